"""A local, independent implementation of the LeadLex REST API for tests, demos and notebooks.

    from leadlex_nb.sandbox import Sandbox, Faults, Profile, PROFILES

It shares no code with the client, so it can catch the client's mistakes instead of repeating them.
"""

from .faults import Faults
from .profiles import PROFILES, Profile
from .server import Sandbox

__all__ = ["PROFILES", "Faults", "Profile", "Sandbox"]
