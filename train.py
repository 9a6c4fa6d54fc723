"""Train, evaluate and log one experiment: ``python train.py model=resnet augment=heavy``
(the same as ``astro-exp train ...``; the code is in astro_exp/cli/train.py).

Sweeps: ``python train.py -m model=resnet,efficientnet_lite0 augment=light,heavy``.
The composed config: ``python train.py --cfg job``; a smoke test: ``python train.py debug=fast``.
"""

from astro_exp.cli.train import main

if __name__ == "__main__":
    main()
