"""pytest-crmbench: benchmark LLM tool-using agents on multi-turn CRM workflows with pytest.

The CRM (:mod:`pytest_crmbench.crm`) and the runner work without pytest; the pytest
layer (:mod:`pytest_crmbench.plugin`, :mod:`pytest_crmbench.fixtures`) is thin glue.
"""

__version__ = "0.1.0"
