"""dlcourse: reference implementations for the course's book.

The book is *Regularization and Optimization for Deep Learning*. Each
subpackage mirrors a part of it: ``dlcourse.regularization`` (Part I),
``dlcourse.optim`` and ``dlcourse.nn`` (Part II), ``dlcourse.data`` for the
data sets. Core modules import only torch and numpy; plotting and widgets live
in ``dlcourse.plotting`` and ``dlcourse.widgets``.
"""

from dlcourse.seeding import seed_everything

__all__ = ["seed_everything", "__version__"]
__version__ = "0.1.0"
