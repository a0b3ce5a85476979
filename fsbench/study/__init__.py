"""Human-rating studies: design (units, per-rater assignments), storage (SQLite) and analysis; app.py is the front."""
