"""``python -m posthog_async.cli``: the same as the ``posthog-async`` console script."""

import sys

from . import main

sys.exit(main())
