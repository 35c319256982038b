from .bases import DATASET_REGISTRY, DatasetFormatError, ReIDDataset, Sample
from .market1501 import Market1501
from .synthetic import SyntheticMarket1501

__all__ = ["DATASET_REGISTRY", "DatasetFormatError", "ReIDDataset", "Sample", "Market1501",
           "SyntheticMarket1501"]
