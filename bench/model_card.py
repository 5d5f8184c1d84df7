"""The model card of the shipped default pair, written from the recipe's state (``bench/default_model.py``)."""
from __future__ import annotations


def _f(v, d=3):
    return "-" if v is None else f"{v:.{d}f}"


def card_text(state: dict) -> str:
    r = state.get("recipe", {})
    cpu = state.get("cpu_seconds", {})
    rows = state.get("rows", {})
    train_cpu = sum(v for k, v in cpu.items() if k.startswith("train_")) / 60
    all_cpu = sum(cpu.values()) / 60
    trained_on = ("the separated cut-outs it reads (each box window, everything outside the chromosome's "
                  "separated mask white)" if r.get("classifier_input") == "separated" else "box crops")
    lines = [
        "# Model card: karyotf's default model pair", "",
        "Three models that work together, shipped inside the package and used whenever no `--model` is given "
        "(`karyotf karyogram CELL.jpg`, `karyotf.Karyotyper.default().call(image)`):", "",
        f"- **detector/**: a class-agnostic SSD MobileNet v2 (TF OD API, `ssd_mobilenet_v2_keras`, "
        f"{r.get('image_size')}x{r.get('image_size')} px input) that finds chromosomes, trained from scratch for "
        f"{r.get('steps')} steps at batch {r.get('batch')} (peak learning rate {r.get('learning_rate')}, cosine "
        f"decay, augmentation {r.get('augment')}); its `karyotf.json` carries P(chromosome | score), an isotonic "
        "calibration fitted on val, which the joint labelling uses to decide which boxes count.",
        f"- **classifier/**: karyotf's chromosome classifier ({r.get('classifier_width')}-"
        f"{8 * int(r.get('classifier_width') or 16)} filters, {r.get('classifier_size')} px crops, the whole cell "
        f"as context), trained on {trained_on}, {r.get('classifier_epochs')} epochs, the weights of its best val epoch; it names each box, "
        "and the joint labelling weighs the whole cell against a karyotype prior that never forces pairs.",
        f"- **second_look/**: the second look (issue 23): for each candidate box of the detector, from its crop, "
        f"its geometry among the other boxes and the cell, P(one whole chromosome) against fragment / two "
        f"chromosomes / duplicate box / background; trained on this detector's own candidates over the train "
        f"cells ({'all' if not r.get('second_look_cells') else 'the first ' + str(r.get('second_look_cells'))}), "
        f"{r.get('second_look_epochs')} epochs, its best val epoch. The joint labelling counts a box by this "
        "probability (the detector's calibration is the fallback when it is switched off).", "",
        "## Data and licence", "",
        "CIL:54816, the Cell Image Library dataset \"24 chromosomes object\" (doi:10.7295/W9CIL54816): G-banded "
        "metaphases of cultured amniotic fluid cells, Taichung Veterans General Hospital, one Pascal VOC box per "
        "chromosome. Licence CC BY 3.0 (https://creativecommons.org/licenses/by/3.0/). Cite: Tseng J.-J. et al., "
        "\"A comprehensive karyotypic image dataset for chromosome detection\", Scientific Data 10:104 (2023), and "
        "CIL:54816. The models are derived from it and carry the same attribution.", "",
        f"Cells: the dataset's training cells whose cases have no cell in its official test split (3,588), minus "
        f"every case of karyotf's built-in sample (so the demo shows cells the models never saw): "
        f"{state.get('data', {}).get('cells')} cells, split by case (seed {r.get('seed')}, {r.get('split')}) "
        "into train / val / test. The dataset's official test split was never read: it is the project's "
        "acceptance set. Every choice (the classifier's best epoch, the score calibration) was made on val.", "",
        "## Recipe", "",
        "```bash",
        "python ../shared/tools/cil54816_train.py SNAPSHOT_GIT_DIR /data/cil-train",
        "make default-model CIL_TRAIN=/data/cil-train    # bench/default_model.py --pack: resumable",
        "```", "",
        f"CPU time (all steps, added over sittings, 2 cores): {all_cpu:.0f} CPU minutes, of which training "
        f"{train_cpu:.0f}: " + ", ".join(f"{k} {v / 60:.1f}" for k, v in cpu.items()) + "."
        + (f" {state['cpu_note']}" if state.get("cpu_note") else ""), "",
        "## How well it does (rows of `bench/results/default_model.md`)", "",
        "| split | cells | F1 (IoU 0.5, class-aware) | class-agnostic F1 | count exact | call right: normal / "
        "abnormal | normal called abnormal | review-flagged: normal / abnormal | wrong calls without a review flag "
        "| s per cell |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for split in ("val", "test"):
        x = rows.get(split)
        if x:
            lines.append(f"| {split} | {x['cells']} | {_f(x['f1'])} | {_f(x['agnostic_f1'])} | "
                         f"{_f(x['count_exact'])} | {_f(x['call_right_normal'])} / {_f(x['call_right_abnormal'])} "
                         f"({x['normal_cells']} / {x['abnormal_cells']} cells) | {_f(x['normal_called_abnormal'])} "
                         f"| {_f(x['normal_review_flagged'])} / {_f(x['abnormal_review_flagged'])} | "
                         f"{_f(x['wrong_without_review'])} | {_f(x['seconds_per_cell'], 2)} |")
    for label, old in state.get("previous", {}).items():
        for split in ("val", "test"):
            x = old.get(split)
            if x:
                lines.append(f"| {split}, {label} | {x['cells']} | {_f(x['f1'])} | {_f(x['agnostic_f1'])} | "
                             f"{_f(x['count_exact'])} | {_f(x['call_right_normal'])} / "
                             f"{_f(x['call_right_abnormal'])} | {_f(x['normal_called_abnormal'])} | "
                             f"{_f(x['normal_review_flagged'])} / {_f(x['abnormal_review_flagged'])} | "
                             f"{_f(x['wrong_without_review'])} | {_f(x['seconds_per_cell'], 2)} |")
    lines += [
        "", "The test rows are held-out cases of the training cells (never trained on, never used for a choice). ",
        "", "## Intended use and limits", "",
        "- Research and teaching: to try karyotf on first use, to pre-sort cells for a person, and as the "
        "starting point of one's own training (`karyotf config ssd --fine-tune DIR/ckpt-N` takes a checkpoint; "
        "this pair ships exports only).",
        "- **Not a diagnostic device.** Every call must be checked by a qualified person; the review flags say "
        "where to look first, and a call without a flag can still be wrong.",
        "- Trained on G-banded amniocyte metaphases like CIL:54816's (one laboratory, one staining and imaging "
        "setup). Other tissues, stains (Q-, R-banding), resolutions or cameras are out of its domain: train on "
        "your own cells.",
        "- It counts chromosomes and names them (numerical calls such as `47,XY,+21`); it does not see structural "
        "changes (translocations, deletions, inversions).",
        "- The detector was trained on a CPU for a short budget, from scratch: it misses or splits some "
        "chromosomes in crowded cells; the joint labelling leaves doubtful boxes out and lists them.",
        "", "Files and their sha256 are in `manifest.json`; karyotf checks them every time the pair is loaded.", ""]
    return "\n".join(lines)
