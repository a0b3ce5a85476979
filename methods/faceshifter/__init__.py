"""FaceShifter (CVPR 2020) reference implementation: AEI-Net + HEAR-Net, trained in-repo."""
