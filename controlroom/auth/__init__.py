"""Who may use the control room: users with roles, their password hashes, log-in with
lock-out, and sessions (issue 9).

Owns the `app_user` and `app_session` tables and the rules of logging in; it must not know
HTTP (cookies and headers are `controlroom.web`'s) nor hold any default user or password.
"""
