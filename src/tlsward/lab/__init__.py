"""The built-in lab: loopback TLS/STARTTLS endpoints that reproduce real failures, with a fresh PKI.

Python and pytest use it through :func:`running_lab`; the CLI through ``tlsward lab up|list|down``.
"""

from tlsward.lab.catalogue import CASES, LabCase, case_named
from tlsward.lab.control import running_lab, start_background, stop_background
from tlsward.lab.state import LabState

__all__ = ["CASES", "LabCase", "LabState", "case_named", "running_lab", "start_background", "stop_background"]
