"""What every capability uses, importing none of them: settings, database, errors, time, crypto."""
