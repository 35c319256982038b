from .bases import DATASET_REGISTRY, DatasetFormatError, ReIDDataset, Sample, dense_split
from .dukemtmc_video import DukeMTMCVideoReID
from .dukemtmcreid import DukeMTMCreID
from .list_dataset import ListDataset
from .market1501 import ImageFolderDataset, Market1501
from .mars import MARS
from .msmt17 import MSMT17
from .synthetic import (SyntheticDukeMTMCreID, SyntheticDukeMTMCVideoReID, SyntheticMarket1501,
                        SyntheticMARS, SyntheticMSMT17, SyntheticVeRi)
from .veri import VeRi

__all__ = ["DATASET_REGISTRY", "DatasetFormatError", "ReIDDataset", "Sample", "dense_split",
           "ImageFolderDataset", "Market1501", "DukeMTMCreID", "MSMT17", "VeRi", "MARS",
           "DukeMTMCVideoReID", "ListDataset", "SyntheticMarket1501", "SyntheticDukeMTMCreID",
           "SyntheticMSMT17", "SyntheticVeRi", "SyntheticMARS", "SyntheticDukeMTMCVideoReID"]
