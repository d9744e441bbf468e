"""swift-train's tests share tiny models and batches from _tiny.py beside this file."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # importlib mode puts no test folder on the path
