"""The authentiq command and the make scripts."""
