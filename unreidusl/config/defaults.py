"""Default configuration ``_C``. Every key a YAML file or command line may set is declared here."""
from .config import CfgNode as CN

_C = CN()

# Python modules or files imported before anything is built; they may register components
# (losses, clusterers, datasets, meta-archs, ...) and may define ``add_config(cfg)`` to add keys.
_C.PLUGINS = []
_C.OUTPUT_DIR = "output/default"
# Seeds python, numpy, torch and data-loader workers; each epoch derives its own streams from it.
_C.SEED = 1
# Deterministic algorithms (slower on GPU); needed for bit-exact resume comparisons.
_C.DETERMINISTIC = False

# ---------------------------------------------------------------------------------------------
_C.MODEL = CN()
_C.MODEL.META_ARCHITECTURE = "ClusterContrast"
# "auto": CUDA when available, else CPU.
_C.MODEL.DEVICE = "auto"
# Checkpoint or weights file to load (evaluation, or initialisation when not resuming).
_C.MODEL.WEIGHTS = ""
# Distributed / fast training (engine/launch.py, modeling/layers/batch_norm.py).
# BatchNorm → SyncBatchNorm in a distributed CUDA job: statistics over the whole global batch.
_C.MODEL.SYNC_BN = False
# "Virtual BN batch": in training, every BatchNorm normalises each of this many equal chunks of its
# batch with the chunk's own statistics (1 = off), so one GPU reproduces the per-GPU statistics of
# a recipe on this many GPUs (e.g. 4 with SOLVER.IMS_PER_BATCH 64 = 16 samples per BN batch).
_C.MODEL.BN_VIRTUAL_SPLITS = 1
# Running statistics of a split BatchNorm: "mean" of the chunks' statistics, or "first" chunk only
# (nn.DataParallel: only the replica on the first GPU writes back its running statistics; what
# AuxUSLReID's 4-GPU runs computed).
_C.MODEL.BN_VIRTUAL_STATS = "mean"
# Model and input images in channels-last memory layout (faster convolutions with AMP on CUDA).
_C.MODEL.CHANNELS_LAST = False

_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.NAME = "ResNet"
_C.MODEL.BACKBONE.DEPTH = 50
_C.MODEL.BACKBONE.LAST_STRIDE = 1
# ImageNet initialisation: PRETRAIN_PATH is a local torchvision state-dict file; with an empty path
# the weights are downloaded from torchvision's URL only if PRETRAIN_DOWNLOAD is True.
_C.MODEL.BACKBONE.PRETRAIN = False
_C.MODEL.BACKBONE.PRETRAIN_PATH = ""
_C.MODEL.BACKBONE.PRETRAIN_DOWNLOAD = False
# ReLU after the stem's bn1 (torchvision's ResNet). AuxUSLReID's released model has none
# (conv1 → bn1 → maxpool); its paper configs set False.
_C.MODEL.BACKBONE.STEM_RELU = True

_C.MODEL.HEADS = CN()
# "GeM" (learnable p), "avg" or "max".
_C.MODEL.HEADS.POOLING = "GeM"
_C.MODEL.HEADS.GEM_P = 3.0
# BatchNorm1d neck with a frozen zero bias.
_C.MODEL.HEADS.BNNECK = True
# Video clips: apply the BN neck to every frame, then average over the clip's frames (BN feature
# mean_t BN(x_t), test feature mean_t normalize(BN(x_t)), AuxUSLReID's released model); False: the
# neck sees the temporal mean (BN(mean_t x_t), test feature normalize(BN(mean_t x_t))). MTCluster only.
_C.MODEL.HEADS.FRAME_BN = False
# Part branches (GL-NCPLR): P horizontal stripes of the backbone
# map, each with its own pooling (POOLING, GEM_P) and BN neck; 0 = none. GL-NCPLR uses 2 (split at H//2).
_C.MODEL.HEADS.NUM_PARTS = 0

_C.MODEL.MEMORY = CN()
_C.MODEL.MEMORY.NAME = "ClusterMemory"
_C.MODEL.MEMORY.TEMP = 0.05
# Weight of the OLD centroid in c <- normalize(m*c + (1-m)*x) (Cluster Contrast's "momentum").
_C.MODEL.MEMORY.OLD_WEIGHT = 0.1
# "momentum": per-sample sequential update; "hard": least-similar instance per class; "mean": batch mean;
# 3C's camera-aware modes (need the batch camera ids, meta-arch ThreeC): "chd" (largest
# confidence-integrated harmonic discrepancy, 3C --cm-mode hd_camera) and "tccl" (3C's TCCL baseline).
_C.MODEL.MEMORY.UPDATE = "momentum"
# CHD confidence of a sample alone with its camera in its class's batch group: "max" = 2, the largest
# possible confidence (3C's released code), "cluster" = 1 + cos to the class's batch centre (ours: a
# lone sample is not maximally confident by construction).
_C.MODEL.MEMORY.CHD_SINGLETON = "cluster"

_C.MODEL.LOSSES = CN()
# Names in the LOSS registry, summed with the weights in WEIGHTS (default weight 1.0 each), for every
# method; empty: the method's own default set (docs/meta_arch.md lists each method's).
_C.MODEL.LOSSES.NAME = []
_C.MODEL.LOSSES.WEIGHTS = []
# Label smoothing ε of LabelSmoothingCrossEntropy and RLSCE.
_C.MODEL.LOSSES.CE = CN()
_C.MODEL.LOSSES.CE.EPSILON = 0.1
# 3C's CIE weighting (CIEWeightedCrossEntropy): camera entropy counted in the
# "batch" (3C --loss-with-camera) or over each cluster's members in the pseudo-labelled set
# ("cluster").
_C.MODEL.LOSSES.CIE = CN()
_C.MODEL.LOSSES.CIE.SCOPE = "batch"
# RLSCE: the ID_K nearest clusters share the smoothing mass (AuxUSLReID's key name). The AuxUSLReID
# keys ID_OPTION / TRI_OPTION (and MUTUAL_TEACH.*_SOFT_WRIGHT) are translated into NAME / WEIGHTS.
_C.MODEL.LOSSES.ID_K = 60
# WeightAdaptiveTripletLoss (WATL): margin m and λ of its weight exp(λ·t).
_C.MODEL.LOSSES.TRI_MARGIN = 0.5
_C.MODEL.LOSSES.TRI_LAMBDA = -0.01
# RLSCE's neighbour map. "nearest_others": the ID_K clusters nearest to each by the Jaccard distance
# between the unit centroids, self excluded, ties by cosine then index; the mass ε is spread over
# the neighbours that exist. "reference" (AuxUSLReID's released code): the ID_K + 1 smallest entries
# of the Jaccard row of the centroids as clustered (self normally among them, ties by index), target
# q = (1 − ε)·onehot(y) + (ε/ID_K)·(onehot(y) XOR A[y]).
_C.MODEL.LOSSES.RLSCE_MAP = "nearest_others"

# ISE: support samples by progressive linear interpolation,
# f~ = normalize(f + λ(t)·(c_n − c_y)) towards the TOPK nearest other centroids c_n, with
# λ(t) = LAMBDA_SCALE · LAMBDA_BASE · ln(1 + (e − 1)·t/T), t = global iteration, T = all iterations.
_C.MODEL.ISE = CN()
# Nearest other clusters per sample = support samples per sample (ISE --topk 1).
_C.MODEL.ISE.TOPK = 1
# β (ISE --support_base_lambda 1.0).
_C.MODEL.ISE.LAMBDA_BASE = 1.0
# The released code multiplies λ by 0.5 twice (0.25); the paper names only "degree λ": 1.0 drops the
# undocumented factor.
_C.MODEL.ISE.LAMBDA_SCALE = 0.25
# Support samples also update the memory (the code and the paper's figure); False: real samples only.
_C.MODEL.ISE.UPDATE_WITH_SUPPORTS = True
# Label-preserving loss τ_lp (ISE --temp_lp_loss 0.6).
_C.MODEL.LOSSES.LP = CN()
_C.MODEL.LOSSES.LP.TEMP = 0.6

# CDSM: DiversityMemory = K central + NUM_MARGINAL·K marginal proxies,
# updated by greedy diversity mining gated by cluster-relative reliability; CenterMarginLoss over it.
# M, marginal proxies per cluster (CDSM --mem-instances: argparse 2, README 4).
_C.MODEL.MEMORY.NUM_MARGINAL = 2
# Gate the mined samples after the first by reliability: CMhybrid_v5 True, CMhybrid_v4 False.
_C.MODEL.MEMORY.RELIABILITY_GATE = True
# Reliable: R_comp or R_indep ≥ RATIO × its maximum over the sample's cluster (the code's 0.2).
_C.MODEL.MEMORY.RELIABILITY_RATIO = 0.2
# Which scores the gate reads for the i-th sample of the outlier-free training list (the batch index):
# "aligned" (ours): that sample's own R_comp / R_indep; "reference" (CDSM's released code): the scores at
# position i of the full, outlier-included list, i.e. another image's once an outlier precedes it (the
# threshold is still that of the sample's own cluster).
_C.MODEL.MEMORY.RELIABILITY_INDEXING = "aligned"
# Re-normalise the updated proxies to unit length (ours, as every other memory); False: CDSM's released
# CMhybrid_v5, which leaves the updated central and marginal proxies un-normalised.
_C.MODEL.MEMORY.RENORMALIZE = True
_C.MODEL.LOSSES.CENTER_MARGIN = CN()
# w in L = (1 − w)·L_center + w·L_margin (CDSM --hard-weight 0.5).
_C.MODEL.LOSSES.CENTER_MARGIN.HARD_WEIGHT = 0.5
# Label smoothing ε of both CEs, 0 = off (CDSM --smooth 0; any --smooth > 0 meant ε = 0.1 there).
_C.MODEL.LOSSES.CENTER_MARGIN.EPSILON = 0.0

# NCPLR / GL-NCPLR: refined soft targets for the classifier
# logits of every branch, ỹ = α·onehot(y) + (1−α)·Σ_{j∈N(i)} w_ij·softmax(z_j), with N(i) the samples
# within NEIGHBOR_EPS of i in the clustering distance. Defaults: the released train.sh (Market GL-NCPLR).
_C.MODEL.NCPLR = CN()
# α: one-hot weight in the global refined target (--alpha 0.1).
_C.MODEL.NCPLR.ALPHA = 0.1
# α_cm: one-hot weight in the part refined targets (--cmalpha 0.3).
_C.MODEL.NCPLR.PART_ALPHA = 0.3
# Neighbour radius on the clustering distance (D_mix with parts; --eps-neighbor 0.2); self is always in N(i).
_C.MODEL.NCPLR.NEIGHBOR_EPS = 0.2
# Which distance the neighbour graphs use: "clustering" (one graph for all branches from the clustering
# distance, D_mix with parts: --use-mixdistneighbbor, the released command) or "branch" (each branch
# its own graph from its own Jaccard distance, radius NEIGHBOR_EPS / PART_NEIGHBOR_EPS: the paper's figure).
_C.MODEL.NCPLR.NEIGHBOR_GRAPH = "clustering"
# Part graphs' radius with NEIGHBOR_GRAPH "branch" (--eps-partneighbor 0.2).
_C.MODEL.NCPLR.PART_NEIGHBOR_EPS = 0.2
# w_ij over N(i): "similarity" softmax(−D/τ) (the paper: closer neighbours weigh more), "distance"
# softmax(+D/τ) (the released code, --ce-option 1: farther neighbours weigh more, the sample itself least),
# "uniform" (--ce-option 0).
_C.MODEL.NCPLR.NEIGHBOR_WEIGHT = "similarity"
# τ_n of the neighbour weights (--neighbor-temp 1.0).
_C.MODEL.NCPLR.NEIGHBOR_TEMP = 1.0
# Where neighbours are looked up: "dataset" (the paper: all pseudo-labelled samples; out-of-batch
# neighbours contribute their latest prediction, kept in a per-sample bank initialised with their
# one-hot pseudo-labels) or "batch" (the released code: only the current mini-batch, which the P×K
# sampler fills with the sample's own pseudo-identity).
_C.MODEL.NCPLR.NEIGHBOR_SCOPE = "dataset"
# Classifier rows per branch: 0 = one per cluster, resized at each clustering (ours); R > 0 = a fixed
# R-row classifier (the released code: 3000) initialised N(0, 0.001), whose first C rows are overwritten
# by the centroids at each clustering and whose logits are cut to the first C (C > R is an error).
_C.MODEL.NCPLR.CLASSIFIER_ROWS = 0
# Drop the classifiers' optimiser state (Adam moments and step count) whenever the pseudo-labels change
# (ours: the moments of the previous clustering's classes would otherwise drive the new centroid rows);
# False keeps them, as the released code (needs CLASSIFIER_ROWS > 0, so that rows persist).
_C.MODEL.NCPLR.RESET_CLASSIFIER_MOMENTS = True
# Global↔local label exchange between the branches (--extra-option 2; needs MODEL.HEADS.NUM_PARTS > 0).
_C.MODEL.NCPLR.EXCHANGE = True
# T in the exchange weights w = exp(−KL/T) (--temp-KLlogits 5.0).
_C.MODEL.NCPLR.KL_TEMP = 5.0
# λ2: weight of each part branch in both the contrastive and the refinement loss; the global branch
# weighs 1 − λ2 (--lambda2 0.2).
_C.MODEL.NCPLR.PART_LOSS_WEIGHT = 0.2

# Mean teacher (MTCluster, CDSM): the teacher follows θ_t ← α_g·θ_t + (1−α_g)·θ_s after every step,
# α_g = min(1 − 1/(g+1), ALPHA). (AuxUSLReID's MUTUAL_TEACH.* keys are accepted: ALPHA is renamed,
# CE_SOFT_WRIGHT / TRI_SOFT_WRIGHT become the weights of MTCluster's losses in MODEL.LOSSES.WEIGHTS.)
_C.MEAN_TEACHER = CN()
_C.MEAN_TEACHER.ALPHA = 0.999
# Also average the BN running statistics (buffers); AuxUSLReID averaged parameters only.
_C.MEAN_TEACHER.EMA_BUFFERS = True
# The teacher's classifier follows the student's by the same EMA (AuxUSLReID's released code averages
# every teacher parameter); False: it keeps its centroid initialisation for the whole epoch.
_C.MEAN_TEACHER.EMA_CLASSIFIER = False
# Step count g in α_g: "global" (optimiser steps so far) or "epoch_x_iters" (epoch × iterations of
# the current epoch + step in the epoch, AuxUSLReID's count; they differ when the iterations per
# epoch change, and only while α_g < ALPHA).
_C.MEAN_TEACHER.EMA_STEP = "global"

# ---------------------------------------------------------------------------------------------
_C.INPUT = CN()
_C.INPUT.SIZE_TRAIN = [256, 128]
_C.INPUT.SIZE_TEST = [256, 128]
_C.INPUT.PIXEL_MEAN = [0.485, 0.456, 0.406]
_C.INPUT.PIXEL_STD = [0.229, 0.224, 0.225]
_C.INPUT.FLIP = CN()
_C.INPUT.FLIP.ENABLED = True
_C.INPUT.FLIP.PROB = 0.5
_C.INPUT.PADDING = CN()
_C.INPUT.PADDING.ENABLED = True
_C.INPUT.PADDING.SIZE = 10
# torchvision Pad mode: "constant" (zeros), "edge", "reflect" or "symmetric".
_C.INPUT.PADDING.MODE = "constant"
_C.INPUT.CJ = CN()
_C.INPUT.CJ.ENABLED = False
_C.INPUT.CJ.PROB = 0.8
_C.INPUT.CJ.BRIGHTNESS = 0.15
_C.INPUT.CJ.CONTRAST = 0.15
_C.INPUT.CJ.SATURATION = 0.1
_C.INPUT.CJ.HUE = 0.1
# Random erasing, filled with REA.VALUE written into the normalised tensor.
_C.INPUT.REA = CN()
_C.INPUT.REA.ENABLED = True
_C.INPUT.REA.PROB = 0.5
_C.INPUT.REA.VALUE = [0.485, 0.456, 0.406]
# Clips: draw flip/crop/jitter/erasing once per clip (True) or per frame (False, as AuxUSLReID).
_C.INPUT.CLIP_CONSISTENT = True

# ---------------------------------------------------------------------------------------------
_C.DATASETS = CN()
# Folder holding the datasets (each in its official folder name).
_C.DATASETS.ROOT = "datasets"
_C.DATASETS.TRAIN = "Market1501"
_C.DATASETS.TEST = "Market1501"
# Corrupt images: False stops with the file's name; True skips it with a warning.
_C.DATASETS.SKIP_CORRUPT = False
# "all" or "dense": dense cuts training tracklets into chunks of DENSE_STEP frames (last chunk longer).
_C.DATASETS.MODE = "all"
# Chunk length of the dense mode, in frames.
_C.DATASETS.DENSE_STEP = 32
# MARS: folder (under MARS/) with the training annotation train_name.txt + tracks_train_info.mat.
_C.DATASETS.MARS_INFO = "info"
# Cache scanned splits (DukeMTMC-VideoReID) outside the dataset folder; re-read when it changes.
_C.DATASETS.USE_CACHE = True
# Folder of the split caches; "" = $XDG_CACHE_HOME/unreidusl/splits (or ~/.cache/unreidusl/splits).
_C.DATASETS.CACHE_DIR = ""
# ListDataset: list files (relative to ROOT) with lines "<path>[,<path>...] <pid> <camid> [<t>[,<t>...]]".
_C.DATASETS.LIST = CN()
_C.DATASETS.LIST.TRAIN = ""
_C.DATASETS.LIST.QUERY = ""
_C.DATASETS.LIST.GALLERY = ""
# First camera id used in the list files (0 or 1); cameras are stored 0-based.
_C.DATASETS.LIST.CAMID_BASE = 0
# The synthetic world (Synthetic* datasets): generated under ROOT/synthetic on first use.
_C.DATASETS.SYNTHETIC = CN()
_C.DATASETS.SYNTHETIC.AUTO_GENERATE = True
_C.DATASETS.SYNTHETIC.SEED = 0
_C.DATASETS.SYNTHETIC.PRESET = "small"

_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 2
# Training sampler (SAMPLER registry) and K, the instances per pseudo-identity in a batch.
_C.DATALOADER.SAMPLER = "RandomMultipleGallerySampler"
_C.DATALOADER.NUM_INSTANCES = 4
# Dynamic training iterations: iterations per epoch = round(ITERS_CLUSTER_MULTIPLIER × #clusters)
# when > 0, else SOLVER.ITERS_PER_EPOCH (AuxUSLReID's DATALOADER.ITERS).
_C.DATALOADER.ITERS_CLUSTER_MULTIPLIER = -1.0
# Video: frames per training clip, and how they are drawn: "random" (a random window of
# consecutive frames, cyclically padded when the tracklet is shorter) or "evenly" (one random
# frame in each of TRAIN_SEQ_LEN equal segments).
_C.DATALOADER.TRAIN_SEQ_LEN = 4
_C.DATALOADER.TRAIN_SAMPLE = "random"
# Video: frames per clip for clustering features ("random" window or "evenly" spaced centres).
_C.DATALOADER.CLUSTER_SEQ_LEN = 32
_C.DATALOADER.CLUSTER_SAMPLE = "random"
# Video: clips drawn per tracklet for clustering (R); feature row i*R + r is draw r of tracklet i.
_C.DATALOADER.CLUSTER_SAMPLE_MULTI = 1
# Video: tracklets per clustering batch; 0 = max(1, CLUSTER.IMS_PER_BATCH // CLUSTER_SEQ_LEN).
_C.DATALOADER.CLUSTER_BATCH_SIZE = 0

# ---------------------------------------------------------------------------------------------
_C.SOLVER = CN()
_C.SOLVER.OPTIMIZER = "Adam"
_C.SOLVER.BASE_LR = 3.5e-4
_C.SOLVER.WEIGHT_DECAY = 5e-4
_C.SOLVER.MOMENTUM = 0.9
# "StepLR" (decay by GAMMA every STEPS[0] epochs), "MultiStepLR" (at each epoch in STEPS), "CosineLR".
_C.SOLVER.SCHED = "StepLR"
_C.SOLVER.STEPS = [20]
_C.SOLVER.GAMMA = 0.1
# Linear LR warm-up over the first WARMUP_EPOCHS epochs from WARMUP_FACTOR x BASE_LR (fast-reid's
# WarmupMultiStepLR, 3C: 10 epochs from 0.1); 0 = none.
_C.SOLVER.WARMUP_EPOCHS = 0
_C.SOLVER.WARMUP_FACTOR = 0.1
_C.SOLVER.MAX_EPOCHS = 50
_C.SOLVER.ITERS_PER_EPOCH = 200
_C.SOLVER.IMS_PER_BATCH = 64
# Run the backbone in chunks of this many samples (0: whole batch); the gradient equals the whole
# batch's with BatchNorm statistics per chunk, like one GPU of a multi-GPU recipe (AuxUSLReID's
# OPTIM.FORWARD_BATCH_SIZE, without its per-chunk mining and fixed division by 4).
_C.SOLVER.FORWARD_BATCH_SIZE = 0
# Mixed precision (engine/amp.py): the training forward under torch.autocast.
_C.SOLVER.AMP = CN()
_C.SOLVER.AMP.ENABLED = False
# "bfloat16" (CUDA or CPU, no loss scaling) or "float16" (CUDA only, with a GradScaler whose state
# is checkpointed).
_C.SOLVER.AMP.DTYPE = "bfloat16"
# Save a checkpoint every this many epochs (the last epoch is always saved).
_C.SOLVER.CHECKPOINT_PERIOD = 1
# Fault tolerance (README "Faults"). Also save the state every this many iterations,
# between two steps, to model_mid_epoch.pth; --resume then continues inside the epoch, exactly (0 = off).
_C.SOLVER.CHECKPOINT_ITER_PERIOD = 0
# On SIGTERM/SIGINT: save model_interrupted.pth at the next step boundary and exit with code 128+signal
# (--resume continues exactly from it); a second signal stops at once.
_C.SOLVER.CHECKPOINT_ON_SIGNAL = True
# A NaN/Inf loss stops training, naming the iteration, the loss terms and the last good checkpoint;
# True: skip such steps instead (no update, model buffers restored; engine/nonfinite.py) ...
_C.SOLVER.SKIP_NONFINITE_LOSS = False
# ... but stop at the (MAX_NONFINITE_SKIPS + 1)-th non-finite step in a row.
_C.SOLVER.MAX_NONFINITE_SKIPS = 5
# Reset the optimiser state (Adam moments) at every epoch, as AuxUSLReID did by rebuilding Adam;
# with SOLVER.SCHED "ConstantLR" this reproduces its optimiser exactly.
_C.SOLVER.RESET_OPTIMIZER_EACH_EPOCH = False
# Which checkpoint model_best.pth holds: "last" (none written; use model_final.pth),
# "cluster_stability" (label-free: highest NMI between consecutive epochs' pseudo-labels) or
# "test_mAP" (selection on the test set, as the reference did: optimistic, opt-in only).
_C.SOLVER.SELECT_BEST = "last"

# ---------------------------------------------------------------------------------------------
_C.CLUSTER = CN()
# Re-cluster every PERIOD epochs.
_C.CLUSTER.PERIOD = 1
_C.CLUSTER.DISTANCE = "JaccardDistance"
# MixedJaccardDistance (GL-NCPLR): λ1, the weight of each part's Jaccard distance in
# D_mix = (1 − P·λ1)·J_global + λ1·Σ_k J_part_k (--lambda1 0.2).
_C.CLUSTER.PART_WEIGHT = 0.2
_C.CLUSTER.K1 = 30
_C.CLUSTER.K2 = 6
# kNN backend for distances: exact "torch" (blockwise), "numpy" or "faiss"; approximate "faiss_ivf" or
# "faiss_hnsw" (candidates from a faiss index, re-scored exactly, recall logged; CLUSTER.ANN); or "auto"
# (the fastest exact one, "faiss_ivf" above CLUSTER.ANN.AUTO_ABOVE features).
_C.CLUSTER.KNN_BACKEND = "torch"
# The approximate kNN backends (cluster/ann.py, docs/clustering.md); TEST.RERANK uses them too.
_C.CLUSTER.ANN = CN()
# faiss_ivf: number of inverted lists (k-means cells); 0 = round(min(16·sqrt(N), N / 16)), lists of about
# an identity's size (docs/clustering.md).
_C.CLUSTER.ANN.NLIST = 0
# faiss_ivf: lists visited per query (more: higher recall, slower).
_C.CLUSTER.ANN.NPROBE = 16
# faiss_hnsw: links per node of the graph.
_C.CLUSTER.ANN.HNSW_M = 32
# faiss_hnsw: candidate queue length while searching (raised to the candidates per row if smaller).
_C.CLUSTER.ANN.EF_SEARCH = 128
# faiss_hnsw: candidate queue length while building the graph.
_C.CLUSTER.ANN.EF_CONSTRUCTION = 80
# PCA to this many dimensions before indexing (0 = off); the returned distances are re-computed in the
# original space.
_C.CLUSTER.ANN.PCA_DIM = 128
# Candidates per row = max(k + 1, ceil(REFINE·k)), re-scored with exact distances (>= 1).
_C.CLUSTER.ANN.REFINE = 1.5
# KNN_BACKEND "auto" switches to "faiss_ivf" above this many features (0 = never), with a log line.
_C.CLUSTER.ANN.AUTO_ABOVE = 100000
# Query rows sampled for the recall@k log line of every approximate search (exact search of those
# rows; 0 = no recall check).
_C.CLUSTER.ANN.RECALL_QUERIES = 1000
# Write the clustering features to a float32 file (numpy.memmap) instead of memory; the kNN reads it
# in chunks (pair it with an approximate backend for millions of samples).
_C.CLUSTER.FEATURES_ON_DISK = False
# That file; "" = OUTPUT_DIR/cluster_features.f32 (a relative path is under OUTPUT_DIR).
_C.CLUSTER.FEATURES_FILE = ""
# JaccardDistance's forward neighbourhood: True = k1 columns with self included (Cluster Contrast);
# False = self + k1 neighbours (Zhong et al.'s re-ranking and 3C's released code).
_C.CLUSTER.K1_INCLUDES_SELF = True
# Jaccard encoding weights V[i, j] = softmax_j(−d_ij) over the expanded neighbourhood, with
# "sqeuclidean" d = ||x_i − x_j||² or "dot" d = 2 − 2<x_i, x_j> (the original formula; the two are
# equal on unit features and differ on raw ones).
_C.CLUSTER.JACCARD_WEIGHTS = "sqeuclidean"
# Features the pseudo-labels come from: "embedding" (the test feature: unit BN embedding) or
# "pre_bn" (the raw pooled feature before the BN neck, temporally averaged, not normalised: what
# AuxUSLReID's released code clusters). With "pre_bn" the centroids (classifier initialisation, RLSCE
# map) are means of the raw features too. MTCluster only.
_C.CLUSTER.FEATURE = "embedding"
_C.CLUSTER.NAME = "DBSCAN"
_C.CLUSTER.EPS = 0.6
_C.CLUSTER.MIN_SAMPLES = 4
# Fault tolerance (cluster/empty_policy.py): a clustering with every sample an outlier
# or all in one cluster "error"s (stop with advice), "keep"s the previous pseudo-labels, or "relax"es:
# re-clusters with eps x EMPTY_EPS_FACTOR^k (all outliers) or eps / EMPTY_EPS_FACTOR^k (one cluster).
_C.CLUSTER.EMPTY_POLICY = "error"
# Factor f by which "relax" widens or narrows eps at each retry (> 1).
_C.CLUSTER.EMPTY_EPS_FACTOR = 1.5
# Retries k = 1..EMPTY_MAX_RETRIES of "relax" before it stops with an error.
_C.CLUSTER.EMPTY_MAX_RETRIES = 3
# Also cluster at EPS − gap and EPS + gap on the same distance (SpCL / CDSM reliability, --eps-gap
# 0.02): the ClusterResult then holds labels_tight / labels_loose. 0 = off.
_C.CLUSTER.RELIABILITY_EPS_GAP = 0.0
# Images per batch when extracting features for clustering.
_C.CLUSTER.IMS_PER_BATCH = 128
# Adaptive eps: mean of the smallest ADAPTIVE_RHO fraction of the non-zero off-diagonal distances.
_C.CLUSTER.ADAPTIVE = False
# rho of the adaptive eps (AuxUSLReID hard-codes 1.6e-3).
_C.CLUSTER.ADAPTIVE_RHO = 1.6e-3
# True: compute the adaptive eps at the first clustering only (saved in checkpoints); False: every time.
_C.CLUSTER.EPS_FROZEN = True
# Auxiliary information at training time (unreidusl/auxinfo, docs/clustering.md).
# TOC: cannot-links between the training tracklets of one camera that overlap in time; DBSCAN is then
# replaced by ICDBSCAN (AuxUSLReID's CLUSTER.ICDBSCAN_OPTION).
_C.CLUSTER.TOC = CN()
_C.CLUSTER.TOC.ENABLED = False
# ICDBSCAN relaxation r: r >= 0 drops constraints with d <= r*eps; r < 0 keeps only those with d <= |r|*eps.
_C.CLUSTER.TOC.RELAXED = 0.0
# ICDBSCAN growth order. "fifo": seeds first-in first-out, candidates in ascending index order, the
# cannot-link sets copied per call (compiled, fast). "reference": AuxUSLReID's released algorithm
# exactly (Python set iteration order; a cluster root's cannot-link set grows in place during the
# call and the relaxed, grown sets carry over to the next clustering).
_C.CLUSTER.TOC.ORDER = "fifo"
# SCP: D += LAMBDA * [same camera] (AuxUSLReID's CLUSTER.CCE_OPTION / CCE_LAMBDA). The weight is sized
# for the Jaccard distance (in [0, 1], eps 0.5-0.6): 0.05 moves same-camera pairs within a tenth of
# eps across it. AuxUSLReID's 0.006 (it barely moves a Jaccard distance) is kept in its paper configs.
_C.CLUSTER.SCP = CN()
_C.CLUSTER.SCP.ENABLED = False
_C.CLUSTER.SCP.LAMBDA = 0.05
# STS: D *= 1 + LAMBDA * exp(-GAMMA * P), P = camera-pair transit plausibility (AuxUSLReID's
# CLUSTER.STR_OPTION / STR_LAMBDA / STR_GAMMA), estimated from the pseudo-labels at every clustering.
_C.CLUSTER.STS = CN()
_C.CLUSTER.STS.ENABLED = False
_C.CLUSTER.STS.LAMBDA = 0.6
_C.CLUSTER.STS.GAMMA = 8.0
# Transit estimator: width of a time-gap bin, in frames of the dataset clock (50 = 2 s at 25 fps) ...
_C.CLUSTER.STS.BIN = 50.0
# ... Gaussian smoothing of the gap histogram, in bins (0 = none) ...
_C.CLUSTER.STS.SIGMA = 1.0
# ... and the pseudo-count per bin (higher = milder P from few observations).
_C.CLUSTER.STS.PRIOR = 1.0
# Force the chunks of one tracklet (same folder and camera, video datasets) into one cluster.
_C.CLUSTER.MUST_LINK = False
# k-means (CLUSTER.NAME = "KMeans"): number of clusters K.
_C.CLUSTER.NUM_CLUSTERS = 500
# k-means: maximum Lloyd iterations.
_C.CLUSTER.KMEANS_ITERS = 100
# k-means backend: "torch", "faiss" or "auto" (faiss when installed).
_C.CLUSTER.KMEANS_BACKEND = "auto"
# k-means on L2-normalised features (as 3C).
_C.CLUSTER.KMEANS_NORMALIZE = True
# 3C: the first WARMUP_EPOCHS epochs cluster with WARMUP_NAME (a CLUSTERER
# name), later epochs with NAME; 0 = no warm-up (3C: --warmup-iters 10 with --warmup-with-dbscan).
_C.CLUSTER.WARMUP_EPOCHS = 0
_C.CLUSTER.WARMUP_NAME = "DBSCAN"
# HDC, Harmonic Discrepancy Clustering (CLUSTER.NAME "HDC", 3C; K = CLUSTER.NUM_CLUSTERS).
_C.CLUSTER.HDC = CN()
# "kmeans++2": greedy k-means++ on the Jaccard distance (3C --hdc-init default); "kmeans++": on the
# features; "random": uniform labels.
_C.CLUSTER.HDC.INIT = "kmeans++2"
# Iteration cap (3C --hdc-max-iter 80) and the first iteration the patience rule applies (3C: 10).
_C.CLUSTER.HDC.MAX_ITER = 80
_C.CLUSTER.HDC.MIN_ITER = 10
# Stop after PATIENCE + 1 iterations without a new lowest centroid shift (3C n_tol 4).
_C.CLUSTER.HDC.PATIENCE = 4
# Anchor-confidence distance: "euler" (the paper's Euler cosine, sum 1 - cos(alpha*pi*dx), the squared
# modulus of the Euler embedding; default), "euler_complex" (3C's released code: |sum (z(x) - z(c))^2|,
# the modulus of a complex square, where opposite coordinate offsets can cancel), "cosine" or "euclidean".
_C.CLUSTER.HDC.DISTANCE = "euler"
# alpha of the Euler embedding (3C: 1.9).
_C.CLUSTER.HDC.EULER_ALPHA = 1.9
# Anchor confidence b = exp(-CONFIDENCE_SCALE * d / max d) (3C hard-codes 5).
_C.CLUSTER.HDC.CONFIDENCE_SCALE = 5.0
# Peripheral samples: h > mean + N_SIGMA * std of their cluster (3C n_sigma 1), or h > THRESHOLD when
# THRESHOLD > 0 (3C --threshold; default off).
_C.CLUSTER.HDC.N_SIGMA = 1.0
_C.CLUSTER.HDC.THRESHOLD = -1.0
# L2-normalise the centroids every iteration (3C --hdc-normalize, default off).
_C.CLUSTER.HDC.NORMALIZE = False
# Members of clusters smaller than this are moved into empty clusters last (3C: 5).
_C.CLUSTER.HDC.PROTECT = 5
# Drop the peripheral samples from training (3C --hdc-outlier; on in the README for all datasets).
_C.CLUSTER.HDC.OUTLIER = True
# Initialise the memory from the non-peripheral members only (3C --hdc-centroids; matters only when
# OUTLIER is off, where training still uses every member).
_C.CLUSTER.HDC.CENTROIDS = True
# Write a cluster-size histogram PNG per clustering to OUTPUT_DIR/clusters/.
_C.CLUSTER.SIZE_HISTOGRAM = True
# Write the identity-discovery report of the last epoch's pseudo-labels to OUTPUT_DIR/clusters/
# (clusters.csv, report.html with a contact sheet per cluster; engine/report_hook.py).
_C.CLUSTER.REPORT = False

# ---------------------------------------------------------------------------------------------
_C.TEST = CN()
_C.TEST.EVAL_ONLY = False
# Evaluate every EVAL_PERIOD epochs (and after the last); 0 disables periodic evaluation.
_C.TEST.EVAL_PERIOD = 1
# Evaluate the initial model before training (the "epoch 0" line of the log).
_C.TEST.EVAL_AT_START = True
_C.TEST.IMS_PER_BATCH = 128
_C.TEST.METRIC = "euclidean"
_C.TEST.MAX_RANK = 50
# Use the compiled (Cython) rank evaluator when it is built.
_C.TEST.USE_CYTHON = True
# "auto": camera-free protocol iff all query/gallery camera ids are equal; "true" / "false" force it.
_C.TEST.CAMERA_FREE = "auto"
# k-reciprocal re-ranking (Zhong et al. 2017): F = (1 - LAMBDA) * Jaccard + LAMBDA * original.
_C.TEST.RERANK = CN()
# Report the re-ranked metrics (the plain ones are logged too, as plain_* metrics).
_C.TEST.RERANK.ENABLED = False
# Size of the k-reciprocal neighbourhood (k1 + 1 nearest items, self included).
_C.TEST.RERANK.K1 = 20
# Local query expansion over the K2 nearest items (1 = off).
_C.TEST.RERANK.K2 = 6
# Weight of the original (row-max normalised) distance in the re-ranked distance.
_C.TEST.RERANK.LAMBDA = 0.3
# kNN backend of the re-ranking: as CLUSTER.KNN_BACKEND (the approximate ones with CLUSTER.ANN).
_C.TEST.RERANK.KNN_BACKEND = "torch"
# Auxiliary information at test time. TOC: query/gallery pairs that overlap in time in one camera
# never match (AuxUSLReID's TEST.OVERLAP_CONSTRAINT). PENALTY: .inf (default) sets them to +inf (they
# rank last, in gallery order among themselves); a finite number is added to their distance instead
# (AuxUSLReID: 1000, which keeps their relative order). Only the ranks among blocked items differ.
_C.TEST.TOC = CN()
_C.TEST.TOC.ENABLED = False
_C.TEST.TOC.PENALTY = float("inf")
# SCP: D += LAMBDA * [same camera] (AuxUSLReID's TEST.CCE_OPTION / CCE_LAMBDA; its training value
# 0.006, its test config 0.03).
_C.TEST.SCP = CN()
_C.TEST.SCP.ENABLED = False
_C.TEST.SCP.LAMBDA = 0.006
# STS: D *= 1 + LAMBDA * exp(-GAMMA * P), P from the transit model of the last clustering (or
# AUX.PATH) (AuxUSLReID's TEST.STR_OPTION, with its CLUSTER.STR_LAMBDA / STR_GAMMA).
_C.TEST.STS = CN()
_C.TEST.STS.ENABLED = False
_C.TEST.STS.LAMBDA = 0.6
_C.TEST.STS.GAMMA = 8.0
# Rank-list and CMC pictures after each evaluation, written to OUTPUT_DIR/visualize/.
_C.TEST.VISUALIZE = CN()
# Write the pictures (also done on demand by tools/visualize.py).
_C.TEST.VISUALIZE.ENABLED = False
# Number of queries (evenly spread over the queries with a true match) to draw rank lists for.
_C.TEST.VISUALIZE.NUM_QUERIES = 8

# ---------------------------------------------------------------------------------------------
# Files of auxiliary information (unreidusl/auxinfo): an .npz from tools/mine_aux.py, or a folder
# with train_aux.npz / test_aux.npz or the original AuxUSLReID pickles; "" = mine it from the
# dataset's own metadata (AuxUSLReID's CLUSTER.*_PATH / TEST.*_PATH / PICKLE_PATH).
_C.AUX = CN()
_C.AUX.PATH = ""
# Allow loading the original AuxUSLReID .pickle files (unpickling can execute code: trusted files only).
_C.AUX.ALLOW_PICKLE = False

_C.LOG = CN()
# Console/JSON/TensorBoard logging period in iterations.
_C.LOG.PERIOD = 20
_C.LOG.TENSORBOARD = True

# Extra hooks (names in the HOOK registry), appended after the default ones.
_C.HOOKS = []
