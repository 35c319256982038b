from .config import CfgNode, ConfigError, get_cfg, load_yaml_with_base

__all__ = ["CfgNode", "ConfigError", "get_cfg", "load_yaml_with_base"]
