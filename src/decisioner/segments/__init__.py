"""Segments: a small safe expression language over profile columns (:mod:`.parser`), compiled
to a flat postfix program evaluated by numba (:mod:`.compile`), targeting in decisions
(:mod:`.targeting`) and audiences in bulk (:mod:`.audiences`).

Importing this package compiles nothing; import the modules you need.
"""

