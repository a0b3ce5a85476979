"""The training toolkit that methods' training code builds on (not part of the plugin contract, :mod:`fsbench.api`).

Recipes nest the scaffold's configurations (:mod:`.config`); a method writes its training as a :class:`GANRun`
(networks, optimisers, weight averages, one step, the swap its monitor scores, a sample grid) that one
:class:`Trainer` drives: resumable, DDP under torchrun, safetensors checkpoints, one seed rule (:func:`step_rng`).
"""
from fsbench.nets.vgg import load_vgg19_features
from fsbench.train.augment import Degradation, source_views
from fsbench.train.average import WeightAverage, evaluated, exported
from fsbench.train.checkpoint import export_weights, require_architecture, unwrap
from fsbench.train.config import AugmentConfig, AverageConfig, IdentityLossConfig, LoopConfig, MonitorConfig, resolve_config
from fsbench.train.data import FaceCrops, IdentityDraw, training_crops
from fsbench.train.dist import Dist, setup as setup_distributed, wrap as wrap_distributed
from fsbench.train.gan import hinge_d_loss, hinge_g_loss, perceptual_network
from fsbench.train.identity import IdentityEnsemble
from fsbench.train.loop import Carried, GANRun, Initial, Trainer, sample_rng, save_grid, step_rng
from fsbench.train.monitor import Monitor
from fsbench.train.pose_prior import pose_loss

__all__ = ["AugmentConfig", "AverageConfig", "Carried", "Degradation", "Dist", "FaceCrops", "GANRun", "IdentityDraw",
           "IdentityEnsemble", "IdentityLossConfig", "Initial", "LoopConfig", "Monitor", "MonitorConfig", "Trainer",
           "WeightAverage", "evaluated", "export_weights", "exported", "hinge_d_loss", "hinge_g_loss",
           "load_vgg19_features", "perceptual_network", "pose_loss", "require_architecture", "resolve_config",
           "sample_rng", "save_grid", "setup_distributed", "source_views", "step_rng", "training_crops", "unwrap",
           "wrap_distributed"]
