"""The state: what has been done, recorded so a run can stop anywhere and resume.

``tables`` declares the SQLAlchemy Core tables and row types, ``store`` the transactions the engine
needs, ``lock`` one runner per state, ``fingerprint`` the content hashes that say whether a step's
inputs changed.
"""
