"""Import tools/main.py as a module for the tests."""
import importlib.util
import os

_path = os.path.join(os.path.dirname(__file__), "..", "tools", "main.py")
_spec = importlib.util.spec_from_file_location("unreidusl_tools_main", _path)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
main = _module.main
