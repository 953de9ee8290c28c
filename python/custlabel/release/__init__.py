"""The release authority: how a registered version becomes the one that labels prod customers.

`lifecycle` is the state machine over the release log (the system of record); the
registry's aliases are its projection. `registration` trains and registers a
version; `fingerprint` hashes what decides a training besides the data.
"""
