"""Load a script under ``tools/`` as a module, to run its ``main(argv)`` in-process."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_tool(relpath: str):
    """``load_tool('tools/qa.py')`` -> the module (executed once per call)."""
    name = 'tool_' + relpath.replace('/', '_').replace('.py', '')
    spec = importlib.util.spec_from_file_location(name, ROOT / relpath)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
