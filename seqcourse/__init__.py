"""seqcourse: the support library of the course.

Plumbing only: device and profile, seeding, data, text, a training loop, plots and test helpers.
The exercises' answers never live here.
"""

from seqcourse.env import Profile, get_profile, pick_device, seed_everything

__version__ = "0.1.0"
__all__ = ["Profile", "get_profile", "pick_device", "seed_everything", "__version__"]
