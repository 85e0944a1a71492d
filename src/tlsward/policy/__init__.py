"""Ring 1: policy profiles. Load and validate them (the shipped Mozilla guidelines, user TOML/YAML files) into
``tlsward.model.policy.PolicyProfile``, and check a scan result against one (``policy.violation`` findings).

Imports only ``tlsward.model``; the rules ring is a sibling, so findings are built from the catalogue here.
"""

from tlsward.policy.evaluate import check_policy
from tlsward.policy.load import SHIPPED, load_policy, shipped_profiles

__all__ = ["SHIPPED", "check_policy", "load_policy", "shipped_profiles"]
