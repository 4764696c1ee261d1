"""What users run: the command line, the web service, batch scoring (local and Ray) and the full-size run."""
