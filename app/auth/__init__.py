"""Who is calling: API clients, access tokens, scopes and roles, identity assertions."""
