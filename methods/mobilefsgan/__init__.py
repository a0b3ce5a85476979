"""MobileFSGAN (paper + supplement, public code HoiM/MobileFSGAN) as an fsbench plugin, trained in-repo."""
