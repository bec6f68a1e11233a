"""Create datasets and mmdet3d info files.

    # procedurally generated nuScenes-format world (+ COCO / ADE20K exports + infos)
    python tools/create_data.py synthetic --root-path data/synthetic --num-scenes 20 --seed 0
    # info files for a real nuScenes release
    python tools/create_data.py nuscenes --root-path data/nuscenes --version v1.0-trainval
    # GT database for a config's ObjectSample (GT-paste) step, from its training split
    python tools/create_data.py gt-database --config configs/centerpoint/centerpoint_tiny_synthetic.py \
        [--cfg-options data_root=data/synthetic/]
    # caption corpus (captions_{train,val}.txt) and the tiny caption tokenizer of the camera
    # generator (caption_tokenizer/), from a world's info files
    python tools/create_data.py captions --root-path data/synthetic
    # cached VAE latents of a split for the camera generator's training (camera_latents/SPLIT/)
    python tools/create_data.py latents --config configs/holodrive/camera/camera_gen_tiny_synthetic.py \
        --vae-checkpoint W/cvae/epoch_2.pth [--split train] [--cfg-options data_root=data/synthetic/]
    # driving-QA data (drive_qa/nuscenes_qa_*.json, drivelm_*.json, corpus_*.txt) from the infos
    python tools/create_data.py drive_qa --root-path data/synthetic [--questions-per-type 3]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402

from holodrive.engine.cli import ConfigError, UserFileNotFoundError, run_cli  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='dataset', required=True)
    syn = sub.add_parser('synthetic', help='generate the synthetic driving world')
    syn.add_argument('--root-path', required=True, help='output folder of the release')
    syn.add_argument('--num-scenes', type=int, default=10)
    syn.add_argument('--seed', type=int, default=0)
    syn.add_argument('--samples-per-scene', type=int, default=20, help='keyframes (2 Hz) per scene')
    syn.add_argument('--image-size', type=int, nargs=2, default=(800, 450), metavar=('W', 'H'))
    syn.add_argument('--no-2d-export', action='store_true', help='skip the COCO / ADE20K exports')
    syn.add_argument('--camera-sweeps', type=int, default=0,
                     help='camera sweeps between keyframes (5 = 12 Hz like nuScenes; 0 = keyframes only)')
    syn.add_argument('--workers', type=int, default=1,
                     help='scenes simulated in parallel processes (output is identical)')
    syn.add_argument('--max-sweeps', type=int, default=10, help='LiDAR sweeps kept per info record')
    nus = sub.add_parser('nuscenes', help='write info files for a nuScenes release')
    nus.add_argument('--root-path', required=True, help='nuScenes data root (holds v1.0-*/)')
    nus.add_argument('--version', default='v1.0-trainval', choices=['v1.0-trainval', 'v1.0-mini'])
    nus.add_argument('--max-sweeps', type=int, default=10)
    nus.add_argument('--workers', type=int, default=1,
                     help='scenes converted in parallel processes (output is identical)')
    gt = sub.add_parser('gt-database', help="cut the training boxes' points for ObjectSample")
    gt.add_argument('--config', required=True, help='the training config (its ObjectSample step)')
    gt.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                    help='config overrides, e.g. data_root=DIR')
    cap = sub.add_parser('captions', help='caption corpus + tiny caption tokenizer of a world')
    cap.add_argument('--root-path', required=True, help='data root holding the info files')
    cap.add_argument('--vocab-size', type=int, default=1000)
    lat = sub.add_parser('latents', help="cache the camera generator's VAE latents of a split")
    lat.add_argument('--config', required=True, help='the camera generator config (its VAE, data)')
    lat.add_argument('--vae-checkpoint', required=True, help='the trained VAE (tools/train.py)')
    lat.add_argument('--split', default='train', choices=['train', 'val', 'test'])
    lat.add_argument('--out-dir', default=None,
                     help='default: DATA_ROOT/camera_latents/SPLIT (model.latent_cache)')
    lat.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                     help='config overrides, e.g. data_root=DIR')
    qa = sub.add_parser('drive_qa', help='NuScenes-QA / DriveLM-style QA + text corpus of a world')
    qa.add_argument('--root-path', required=True, help='data root holding the info files')
    qa.add_argument('--splits', nargs='+', default=['train', 'val'])
    qa.add_argument('--questions-per-type', type=int, default=3,
                    help='closed questions per template type per keyframe')
    qa.add_argument('--vocab-size', type=int, default=2048,
                    help='BPE vocabulary of the tiny LLM tokenizer (drive_qa/tokenizer/)')
    for sp in (syn, nus):
        sp.add_argument('--out-dir', default=None, help='where info files go (default: root path)')
        sp.add_argument('--max-cam-sweeps', type=int, default=0,
                        help='previous non-keyframe images per camera in the infos (cam_sweeps)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.dataset == 'gt-database':
        return gt_database(args)
    if args.dataset == 'captions':
        return captions(args)
    if args.dataset == 'drive_qa':
        return drive_qa(args)
    if args.dataset == 'latents':
        return latents(args)
    from holodrive.datasets.nuscenes_converter import create_nuscenes_infos

    version = getattr(args, 'version', None)
    if args.dataset == 'synthetic':
        from holodrive.datasets.synthetic import generate_world
        summary = generate_world(args.root_path, num_scenes=args.num_scenes, seed=args.seed,
                                 samples_per_scene=args.samples_per_scene,
                                 image_size=tuple(args.image_size),
                                 camera_sweeps_per_sample=args.camera_sweeps,
                                 export_2d=not args.no_2d_export, progress=True,
                                 num_workers=args.workers)
        version = summary.version
        print(f'world: {summary.num_samples} keyframes, {summary.num_annotations} annotations '
              f'in {summary.elapsed:.1f} s ({version})')
    elif not os.path.isdir(os.path.join(args.root_path, args.version)):
        raise UserFileNotFoundError(f'{args.root_path}/{args.version}: nuScenes tables not found '
                                '(download nuScenes and point --root-path at it)')
    infos = create_nuscenes_infos(args.root_path, version=version, out_dir=args.out_dir,
                                  max_sweeps=args.max_sweeps, progress=True,
                                  workers=args.workers, max_cam_sweeps=args.max_cam_sweeps)
    for split, path in infos.items():
        print(f'{split}: {path}')


def captions(args):
    from holodrive.datasets.caption_corpus import write_caption_corpus
    from holodrive.engine.cli import import_project
    import_project()
    if not os.path.isdir(args.root_path):
        raise UserFileNotFoundError(f'{args.root_path}: data root not found')
    for name, path in write_caption_corpus(args.root_path, vocab_size=args.vocab_size).items():
        print(f'{name}: {path}')


def drive_qa(args):
    from holodrive.datasets.drive_qa import format_summary, write_drive_qa
    from holodrive.engine.cli import import_project
    import_project()
    if not os.path.isdir(args.root_path):
        raise UserFileNotFoundError(f'{args.root_path}: data root not found')
    summaries = write_drive_qa(args.root_path, splits=args.splits,
                               questions_per_type=args.questions_per_type)
    for summary in summaries.values():
        print('\n'.join(format_summary(summary)))
    corpus = os.path.join(args.root_path, 'drive_qa', 'corpus_train.txt')
    if os.path.isfile(corpus):      # the tiny LLM's tokenizer: train-split text only
        from holodrive.models.drive_qa.processing import train_drive_tokenizer
        out = os.path.join(args.root_path, 'drive_qa', 'tokenizer')
        with open(corpus, encoding='utf-8') as f:
            tok = train_drive_tokenizer((line.rstrip('\n') for line in f), out,
                                        vocab_size=args.vocab_size)
        print(f'tokenizer: {out} ({len(tok)} tokens)')


def latents(args):
    from holodrive.engine.cli import import_project, prepare_config
    from holodrive.models.camera_gen.latent_cache import write_latent_cache
    import_project()
    cfg = prepare_config(args.config, cfg_options=args.cfg_options, check_paths=True)
    if 'vae' not in cfg.model:
        raise ConfigError(f'{args.config}: model.vae missing (use a camera generator config)')
    meta = write_latent_cache(cfg, args.vae_checkpoint, split=args.split, out_dir=args.out_dir)
    out = args.out_dir or f"{cfg.data_root.rstrip('/')}/camera_latents/{args.split}"
    print(f"latents: {meta['num_keyframes']} keyframes -> {out} (image {meta['image_hw']}, "
          f"VAE sha256 {meta['vae_sha256'][:12]})")
    print(f"posterior means: mean {meta['mean']:.4f}, std {meta['std']:.4f} -> "
          f"latent_shift {meta['mean']:.3f}, latent_scale {1 / max(meta['std'], 1e-8):.4f}")


def gt_database(args):
    from holodrive.datasets.gt_database import gt_database_from_config
    from holodrive.engine.cli import import_project, prepare_config
    import_project()
    cfg = prepare_config(args.config, cfg_options=args.cfg_options, check_paths=True)
    try:
        counts = gt_database_from_config(cfg, progress=True)
    except ValueError as err:
        if 'ObjectSample' not in str(err):
            raise
        raise ConfigError(f'{args.config}: {err}') from None
    print('gt database: ' + ', '.join(f'{k} {v}' for k, v in counts.items()))


if __name__ == '__main__':
    run_cli(main)
