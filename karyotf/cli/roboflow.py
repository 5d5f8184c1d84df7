"""``karyotf roboflow pull`` / ``karyotf roboflow import``: Roboflow datasets in."""
from __future__ import annotations

from pathlib import Path

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def register(sub) -> None:
    from .. import defaults as D

    p = sub.add_parser("roboflow", help="pull a Roboflow dataset version, or import an unpacked Roboflow export",
                       description="Roboflow datasets in: `pull` downloads a version with the roboflow package "
                                   "(needs the network and an API key); `import` turns an unpacked VOC, COCO JSON "
                                   "or TFRecord export into karyotf's VOC layout (and records).")
    rsub = p.add_subparsers(dest="roboflow_command", metavar="SUBCOMMAND")

    pull = rsub.add_parser("pull", help="download a dataset version from Roboflow")
    pull.add_argument("--workspace", required=True, help="workspace id (from the Roboflow URL)")
    pull.add_argument("--project", required=True, help="project id (from the Roboflow URL)")
    pull.add_argument("--version", type=int, required=True, help="dataset version number")
    pull.add_argument("--format", default=D.ROBOFLOW_FORMAT, choices=("voc", "tfrecord", "coco"),
                      help="export format")
    pull.add_argument("--out", type=Path, default=None,
                      help="where to unpack (default: roboflow/PROJECT-VERSION-FORMAT)")
    pull.add_argument("--api-key", default=None, help="Roboflow API key (default: $ROBOFLOW_API_KEY)")
    pull.add_argument("--api-url", default=None,
                      help="Roboflow API base URL (default: the roboflow package's, https://api.roboflow.com, "
                           "or $API_URL)")
    pull.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    pull.add_argument("--import-to", type=Path, default=None,
                      help="also import the pulled export into this VOC folder (as `roboflow import`)")
    pull.set_defaults(func=_pull)

    imp = rsub.add_parser("import", help="import an unpacked Roboflow export (VOC, COCO JSON or TFRecord)")
    imp.add_argument("export_dir", type=Path, help="the unpacked export (with train/ valid/ test/)")
    imp.add_argument("--out", type=Path, default=D.ROBOFLOW_DIR,
                     help="VOC output folder: images/ + annotations/")
    imp.add_argument("--format", default=None, choices=("voc", "tfrecord", "coco"),
                     help="export format (default: detected from the files)")
    imp.add_argument("--class-map", default=None,
                     help="extra class spellings, ROBOFLOW=KARYOTF comma-separated, e.g. 'chromo-21=21,sexX=X' "
                          "(A1, chr21, 21, x are understood without it)")
    imp.add_argument("--keep-names", action="store_true",
                     help="keep Roboflow's NAME_jpg.rf.HASH image names (default: restore NAME)")
    imp.add_argument("--records", type=Path, default=None,
                     help="also write TFRecords here (as `karyotf records OUT --out RECORDS`)")
    imp.set_defaults(func=_import)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _pull(args) -> int:
    from ..roboflow import import_export, pull

    path = pull(args.workspace, args.project, args.version, fmt=args.format, out_dir=args.out,
                api_key=args.api_key, overwrite=args.overwrite, api_url=args.api_url)
    print(f"pulled {args.workspace}/{args.project}/{args.version} ({args.format}) -> {path}")
    if args.import_to:
        print(import_export(path, args.import_to, fmt=args.format).text())
    else:
        print(f"next: karyotf roboflow import {path} --out data/roboflow")
    return 0


def _import(args) -> int:
    from ..roboflow import import_export, parse_class_map

    result = import_export(args.export_dir, args.out, fmt=args.format, class_map=parse_class_map(args.class_map),
                           records_dir=args.records, keep_names=args.keep_names)
    print(result.text())
    return 0
