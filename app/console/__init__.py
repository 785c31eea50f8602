"""The officers' console at ``/console``: server-rendered pages (Jinja2), no build step, no
script needed. ``deps`` holds what every page builds on (the signed-in person, admin-only
pages, CSRF-checked forms, rendering with the security headers); ``router`` the pages."""
