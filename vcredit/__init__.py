"""The composition root: the ``vcredit`` command, which services make up the system and how
they are started (vcredit/services.py; vcredit/cluster.py runs them as separate processes
for tests and benchmarks), and what spans several services' databases (PII key rotation).
``shared/`` is common code and imports none of this (tests/unit/project/test_architecture.py)."""
