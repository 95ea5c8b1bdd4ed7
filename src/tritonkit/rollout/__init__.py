"""Roll a tritonkit pipeline forward or back on a running server (EXPLICIT model control mode).

>>> with TritonClient(url, headers={"admin-key": key}) as client:
...     rollout(client, Path("model_repository"), "flowers", version=3, log=server_log)
"""

from ._errors import RolloutError, VerificationError
from ._rollout import CHECK_ATOL, RolloutResult, rollback, rollout, served_version

__all__ = [
    "CHECK_ATOL",
    "RolloutError",
    "RolloutResult",
    "VerificationError",
    "rollback",
    "rollout",
    "served_version",
]
