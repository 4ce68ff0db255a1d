import os
import sys
from pathlib import Path

# Tests run from a clean clone: the repo root is the import root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Two cores: keep each test process from oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "2")
