"""Cases, split by what is done with them:

- ``common``: the context, clocks, events and anomalies every use case shares;
- ``access``: who may act on a case — the one place that loads a case for a caller and asks
  domain/access.py's table;
- ``submission``: submitting (form, materials, verified names, Idempotency-Key);
- ``transitions``: officers', applicants' and the system's steps;
- ``branch_actions``: a parallel department's decision on its branch;
- ``department_pushes``: department systems' decisions and mirrored cases, from exchange (ADR 0021);
- ``reading``: details, lists, the worklist, public progress;
- ``query_codes``: the per-case limit on query-code guesses;
- ``materials``: downloading a case's material;
- ``evaluations``: 好差评 and published results.

The names below are what modules outside this package used from the former ``cases.py``
(supervision, the calendar route); new code imports the submodule it needs.
"""

from services.caseflow.cases.access import can_see_all, visible_case
from services.caseflow.cases.common import Context, _insert, record_anomaly
from services.caseflow.cases.transitions import (
    apply_action,
    complete_by_event,
    note_on_timeline,
    recompute_provisional,
)

__all__ = [
    "Context",
    "_insert",
    "apply_action",
    "can_see_all",
    "complete_by_event",
    "note_on_timeline",
    "recompute_provisional",
    "record_anomaly",
    "visible_case",
]
