"""``python -m pipecat_bey.cli``: the ``pipecat-bey`` command."""

import sys

from pipecat_bey.cli.app import main

sys.exit(main())
