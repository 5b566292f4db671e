"""The training loop: official losses, Adam, clipping, validation, best/last checkpoints, exact resume.

Output folder:
  last.safetensors, best.safetensors   our checkpoint format (config, provenance, mean training template)
  state.safetensors + state.json       optimizer / RNG / loop position for `--resume` (no pickle)
  run_config.json                      the resolved training config
  log.csv (+ tensorboard/)             one row per epoch
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from model_core.checkpoint import OWN_LICENCE, CheckpointInfo, load_checkpoint, save_checkpoint
from model_core.data.blendshape_corpus import open_corpus
from model_core.data.dataset import Sample
from model_core.data.masks import MaskError
from model_core.model import JambaTalk
from model_core.training.batches import Batch, collate, crop_for, epoch_batches
from model_core.training.config import TrainConfig
from model_core.training.evaluate import EvalResult, autocast, evaluate_samples
from model_core.training.lipreading import AsrTeacher, LipReader, lip_losses
from model_core.training.log import RunLog
from model_core.training.losses import closure_mse, lip_gap_mse, lip_mse, opening_mse, velocity_mse, vertex_mse
from model_core.training.phone_probe import PhoneProbe, phone_losses
from model_core.training.setup import build_model, resolve_runtime
from model_core.training.state import load_training_state, new_token, save_training_state

RUN_CONFIG = "run_config.json"
_RUN_FILES = ("last.safetensors", "best.safetensors", "state.safetensors", "state.json", RUN_CONFIG, "log.csv")
# Options that may change between a run and its resumption; anything else must stay the same.
_RESUMABLE_CHANGES = {("train", "epochs"), ("train", "max_minutes"), ("train", "num_threads"), ("train", "device"),
                      ("train", "precision"), ("train", "eval_every"), ("train", "tensorboard"), ("data", "cache"),
                      ("train", "output_dir")}
_LICENCES = {
    "vocaset": "Trained on VOCASET: its licence (non-commercial scientific research only) may restrict these weights.",
    "biwi": "Trained on BIWI: its licence (non-commercial research only) may restrict these weights.",
}


@dataclass
class TrainOutcome:
    status: str  # "finished" or "time_limit"
    output_dir: Path
    epochs_completed: int
    global_step: int
    best_score: float | None
    best_epoch: int | None
    last_validation: dict[str, float] = field(default_factory=dict)
    last_baseline: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class LipBranch:
    teacher: AsrTeacher
    reader: LipReader


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _flatten(config: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {(section, key): value for section, table in config.items() for key, value in table.items()}


def check_output(folder: Path, cfg: TrainConfig, resume: bool, overwrite: bool) -> None:
    """Refuse to mix runs (nothing is written here); on resume check that the config describes the same run."""
    if resume:
        saved_path = folder / RUN_CONFIG
        if not saved_path.is_file():
            raise ValueError(f"{folder} holds no run to resume (no {RUN_CONFIG}).")
        saved = _flatten(json.loads(saved_path.read_text(encoding="utf-8")))
        current = _flatten(cfg.to_dict())
        changed = sorted(f"{s}.{k}" for (s, k) in set(saved) | set(current)
                         if (s, k) not in _RESUMABLE_CHANGES and saved.get((s, k)) != current.get((s, k)))
        if changed:
            raise ValueError(f"Cannot resume the run in {folder}: the config changed in {', '.join(changed)}. Only "
                             "epochs, max_minutes, eval_every, device, precision, threads and logging may change.")
        return
    saved = [name for name in ("last.safetensors", "state.json") if (folder / name).exists()]
    if saved and not overwrite:
        raise ValueError(f"{folder} already holds a training run ({', '.join(saved)}); pass --resume to continue "
                         "it or --overwrite to start again from scratch.")


def start_output(folder: Path, cfg: TrainConfig) -> None:
    """Clear what an earlier run here wrote (only our files) and record this run's config."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in _RUN_FILES:
        if (folder / name).exists():
            (folder / name).unlink()
    if (folder / "tensorboard").is_dir():
        shutil.rmtree(folder / "tensorboard")
    (folder / RUN_CONFIG).write_text(json.dumps(cfg.to_dict(), indent=1), encoding="utf-8")


class Trainer:
    def __init__(self, cfg: TrainConfig, *, resume: bool = False, overwrite: bool = False,
                 progress: bool = True) -> None:
        self.cfg = cfg
        self.opts = cfg.train
        self.progress = progress
        self.started = time.monotonic()
        if self.opts.num_threads:
            torch.set_num_threads(self.opts.num_threads)
        self.out = Path(self.opts.output_dir)
        check_output(self.out, cfg, resume, overwrite)
        self.device, self.amp = resolve_runtime(self.opts.device, self.opts.precision)

        self.corpus = open_corpus(cfg.data.dir, cfg.data.layout, cfg.data.split_preset, cache=cfg.data.cache)
        self.train_takes = self.corpus.split("train")
        self.val_takes = self.corpus.split("val", required=False)
        self.train_subjects = sorted({t.subject for t in self.train_takes})
        self.lips, self.upper = self._masks()
        self.lip_coordinates = self._lip_coordinates()
        self.lip_pair = self._lip_pair()
        self.template = self.corpus.mean_template(self.train_subjects)

        seed_everything(self.opts.seed)
        self.model: JambaTalk = build_model(cfg, self.corpus, self.train_subjects).to(self.device)
        self.lip = self._lip_branch()
        self.phone_probe = self._phone_probe()
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.lip is not None:
            params += list(self.lip.reader.parameters())
        if self.phone_probe is not None:
            params += list(self.phone_probe.parameters())
        self.params = params
        self.optimizer = torch.optim.Adam(params, lr=self.opts.lr)
        self.batches_per_epoch = math.ceil(len(self.train_takes) / self.opts.batch_size)
        self.progress_state: dict[str, Any] = {
            "epoch": 0, "batches_done": 0, "global_step": 0, "best_score": None, "best_epoch": None,
            "epoch_sums": {}, "epoch_count": 0, "elapsed_seconds": 0.0, "last_validation": {}, "last_baseline": {},
        }
        if resume:
            self._resume()
        else:
            start_output(self.out, cfg)  # only now: a config or data mistake above leaves the folder untouched
        self.elapsed_before = float(self.progress_state["elapsed_seconds"])
        self.log = RunLog(self.out, tensorboard=self.opts.tensorboard)
        # Rows of epochs after the saved state (a run killed between logging and saving) are done again.
        self.log.truncate_after(self.progress_state["epoch"])

    # -- setup helpers ----------------------------------------------------------------------------------------
    def _masks(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Masks for validation LVE/FDD and the lip reader: required when the run depends on them."""
        needed = self.cfg.lip_reading.enabled or self.opts.best_metric == "lve" or self.opts.lip_weight > 0
        try:
            lips, upper = self.corpus.masks(self.cfg.data.lips or None, self.cfg.data.upper_face or None)
        except MaskError as exc:
            if needed:
                raise
            self._say(f"Note: validation reports vertex MSE only ({exc})")
            return None, None
        return lips.indices, upper.indices

    def _lip_pair(self) -> tuple[int, int] | None:
        """The lip landmarks (upper, lower) for the lip gap, closure and opening terms (the head names them)."""
        if not (self.opts.lip_gap_weight or self.opts.closure_weight or self.opts.opening_weight):
            return None
        marks = getattr(getattr(self.corpus, "head", None), "landmarks", {})
        if "lip_upper" not in marks or "lip_lower" not in marks:
            raise ValueError("train.lip_gap_weight, closure_weight and opening_weight need lip landmarks: train on a "
                             "blendshape corpus (its head names them) or set them to 0.")
        return int(marks["lip_upper"]), int(marks["lip_lower"])

    def _lip_coordinates(self) -> torch.Tensor | None:
        """Indices into the flattened (V*3) motion of the lip vertices' x, y, z (for train.lip_weight)."""
        if not self.opts.lip_weight:
            return None
        vertices = torch.as_tensor(np.unique(self.lips), dtype=torch.long)
        return (vertices[:, None] * 3 + torch.arange(3)).reshape(-1).to(self.device)

    def _lip_branch(self) -> LipBranch | None:
        opts = self.cfg.lip_reading
        if not opts.enabled:
            return None
        teacher = AsrTeacher(opts.asr_model, self.device)
        reader = LipReader(self.lips, teacher.hidden_size, teacher.vocab_size, opts.layers, opts.heads,
                           opts.ffn_dim, opts.dropout).to(self.device)
        return LipBranch(teacher, reader)

    def _phone_probe(self) -> PhoneProbe | None:
        if not self.opts.phone_weight:
            return None
        first = self.corpus.load(self.train_takes[0])
        if first.phones is None:
            raise ValueError("train.phone_weight needs the phones of every take: train on a blendshape corpus made by "
                             "`jambatalk synth-corpus` (its takes/*.json list them) or set it to 0.")
        return PhoneProbe(self.model.config.audio_feature_in).to(self.device)

    def _extra_modules(self) -> dict[str, torch.nn.Module]:
        modules: dict[str, torch.nn.Module] = {}
        if self.lip is not None:
            modules["lip_reader"] = self.lip.reader
        if self.phone_probe is not None:
            modules["phone_probe"] = self.phone_probe
        return modules

    def _resume(self) -> None:
        state = load_training_state(self.out)
        last = load_checkpoint(self.out / "last.safetensors")
        if last.info.provenance.get("resume_token") != state.token:
            raise ValueError(f"{self.out / 'last.safetensors'} and the training state are from different steps (was "
                             "the run killed while saving?); it cannot be resumed exactly.")
        self.model.load_state_dict(last.model.state_dict(), strict=True)
        state.restore(self.optimizer, self._extra_modules())
        self.progress_state.update(state.progress)
        p = self.progress_state
        self._say(f"Resuming {self.out}: epoch {p['epoch'] + 1}, {p['batches_done']} of {self.batches_per_epoch} "
                  f"batches done, step {p['global_step']}.")

    def _say(self, text: str) -> None:
        tqdm.write(text)

    # -- the loop ---------------------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        total = max(1, self.opts.epochs * self.batches_per_epoch)
        factor = 1.0
        if self.opts.warmup_steps and step < self.opts.warmup_steps:
            factor = (step + 1) / self.opts.warmup_steps
        if self.opts.lr_schedule == "cosine":
            factor *= 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
        return self.opts.lr * factor

    def out_of_time(self) -> bool:
        limit = self.opts.max_minutes
        return bool(limit) and time.monotonic() - self.started >= limit * 60.0

    def run(self) -> TrainOutcome:
        p = self.progress_state
        status = "finished"
        try:
            while p["epoch"] < self.opts.epochs:
                if not self._train_epoch(p["epoch"]):
                    self._save()  # part-way through the epoch: --resume continues at the next batch
                    status = "time_limit"
                    break
                sums, count = p["epoch_sums"], p["epoch_count"]
                p["epoch"] += 1
                p["batches_done"], p["epoch_sums"], p["epoch_count"] = 0, {}, 0
                self._end_epoch(p["epoch"], sums, count)
                self._save()
                if self.out_of_time() and p["epoch"] < self.opts.epochs:
                    status = "time_limit"
                    break
        finally:
            self.log.close()
        if status == "time_limit":
            self._say(f"Stopped after {self.opts.max_minutes:g} min (train.max_minutes) and saved; continue with "
                      "--resume.")
        return TrainOutcome(status, self.out, p["epoch"], p["global_step"], p["best_score"], p["best_epoch"],
                            dict(p["last_validation"]), dict(p["last_baseline"]), self.elapsed())

    def elapsed(self) -> float:
        """Training seconds over every session of this run."""
        return self.elapsed_before + time.monotonic() - self.started

    def _train_epoch(self, epoch: int) -> bool:
        """Train the rest of `epoch`; False when the time limit stopped it part-way."""
        p = self.progress_state
        self.model.train()
        for module in self._extra_modules().values():
            module.train()
        batches = epoch_batches(self.opts.seed, epoch, len(self.train_takes), self.opts.batch_size)
        bar = tqdm(total=len(batches), initial=p["batches_done"], desc=f"epoch {epoch + 1}/{self.opts.epochs}",
                   unit="batch", disable=not self.progress, leave=False)
        try:
            for index in range(p["batches_done"], len(batches)):
                samples = [crop_for(self.corpus.load(self.train_takes[i]), self.opts.max_seconds, self.opts.seed,
                                    epoch, index * self.opts.batch_size + k, self.cfg.augment)
                           for k, i in enumerate(batches[index])]
                losses = self._step(samples, p["global_step"])
                for key, value in losses.items():
                    p["epoch_sums"][key] = p["epoch_sums"].get(key, 0.0) + value
                p["epoch_count"] += 1
                p["global_step"] += 1
                p["batches_done"] = index + 1
                bar.update(1)
                bar.set_postfix(loss=f"{losses['loss']:.4g}")
                if self.out_of_time() and index + 1 < len(batches):
                    return False
        finally:
            bar.close()
        return True

    def _step(self, samples: list[Sample], step: int) -> dict[str, float]:
        lr = self.lr_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        total = len(samples)
        sums: dict[str, float] = {}
        style_names = self.model.config.style_names if self.model.config.style_embedding else None
        for batch in collate(samples, style_names, self.device):
            parts = self._losses(batch)
            weight = batch.size / total  # groups of unequal length share one optimiser step
            (parts["loss"] * weight).backward()
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach()) * weight
        if self.opts.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.opts.grad_clip)
        self.optimizer.step()
        return sums

    def _losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        o = self.opts
        frames = batch.motion.shape[1]
        with autocast(self.device, self.amp):
            features = self.model.encode(batch.audio, frame_count=frames)
            channels = self.model.decode_channels(features, batch.style)
            phone_logits = self.phone_probe(features) if self.phone_probe is not None else None
            # Blendshape models: vertex losses through the basis (clamped weights), plus the raw weights' own
            # error, which also pulls weights back that left the 0..1 range (the clamp passes no gradient there).
            offsets = self.model.channels_to_offsets(channels)
        parts = {"vertex_mse": vertex_mse(offsets, batch.motion), "velocity_mse": velocity_mse(offsets, batch.motion)}
        loss = o.vertex_weight * parts["vertex_mse"] + o.velocity_weight * parts["velocity_mse"]
        if self.model.outputs_blendshapes and batch.weights is not None:
            parts["weight_mse"] = vertex_mse(channels, batch.weights)
            loss = loss + o.weight_space_weight * parts["weight_mse"]
        if self.lip_pair is not None and o.lip_gap_weight:
            parts["lip_gap_mse"] = lip_gap_mse(offsets, batch.motion, *self.lip_pair)
            loss = loss + o.lip_gap_weight * parts["lip_gap_mse"]
        if self.lip_pair is not None and o.closure_weight:
            parts["closure_mse"] = closure_mse(offsets, batch.motion, *self.lip_pair,
                                               tolerance_frames=o.closure_tolerance_frames)
            loss = loss + o.closure_weight * parts["closure_mse"]
        if self.lip_pair is not None and o.opening_weight:
            parts["opening_mse"] = opening_mse(offsets, batch.motion, *self.lip_pair)
            loss = loss + o.opening_weight * parts["opening_mse"]
        if self.lip_coordinates is not None:
            parts["lip_mse"] = lip_mse(offsets, batch.motion, self.lip_coordinates)
            loss = loss + o.lip_weight * parts["lip_mse"]
        if phone_logits is not None:
            if batch.phones is None:
                raise ValueError(f"train.phone_weight: a take among {', '.join(batch.subjects)} has no phones.")
            parts["phone_ce"], parts["phone_accuracy"] = phone_losses(phone_logits, batch.phones)
            loss = loss + o.phone_weight * parts["phone_ce"]
        if o.moe_balance_weight:
            parts["moe_balance"] = self.model.moe_aux_loss().to(loss.device)
            loss = loss + o.moe_balance_weight * parts["moe_balance"]
        if self.lip is not None:
            hidden, targets = self.lip.teacher(batch.audio)
            with autocast(self.device, self.amp):
                features, logits = self.lip.reader(offsets, hidden.shape[1])
            feature_mse, ctc = lip_losses(features, logits, hidden, targets, self.lip.teacher.blank)
            parts.update(lip_feature_mse=feature_mse, lip_ctc=ctc)
            loss = loss + self.cfg.lip_reading.feature_weight * feature_mse + self.cfg.lip_reading.ctc_weight * ctc
        parts["loss"] = loss
        return parts

    # -- validation and saving --------------------------------------------------------------------------------
    def validate(self) -> EvalResult | None:
        if not self.val_takes:
            return None
        samples = (self.corpus.load(t) for t in self.val_takes)
        return evaluate_samples(self.model, samples, self.lips, self.upper, self.device, self.amp)

    def _end_epoch(self, epoch: int, sums: dict[str, float], count: int) -> None:
        """Log epoch `epoch` (1-based, just finished), validate when due, keep the best checkpoint."""
        p = self.progress_state
        row: dict[str, Any] = {"epoch": epoch, "global_step": p["global_step"], "lr": self.lr_at(p["global_step"]),
                               "seconds": round(self.elapsed(), 2)}
        row.update({f"train_{k}": v / max(1, count) for k, v in sums.items()})
        due = epoch % self.opts.eval_every == 0 or epoch == self.opts.epochs
        result = self.validate() if due else None
        improved = False
        if result is not None:
            row.update({f"val_{k}": v for k, v in result.model.items() if k in ("vertex_mse", "lve", "fdd", "mve")})
            if "lve" in result.baseline:
                row["baseline_val_lve"] = result.baseline["lve"]
            score = result.model.get(self.opts.best_metric)
            if score is not None and (p["best_score"] is None or score < p["best_score"]):
                p["best_score"], p["best_epoch"], improved = score, epoch, True
            p["last_validation"], p["last_baseline"] = dict(result.model), dict(result.baseline)
        elif not self.val_takes:
            improved = True  # without a validation split the best checkpoint is the latest one
            p["best_epoch"] = epoch
        row["best"] = int(improved)
        self.log.write(row)
        if improved:
            self._write_checkpoint(self.out / "best.safetensors", token=None)
        summary = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k.startswith(("train_loss", "val_")))
        self._say(f"epoch {epoch}/{self.opts.epochs}: {summary}{' (best)' if improved and result else ''}")

    def _provenance(self, token: str | None) -> dict[str, Any]:
        p = self.progress_state
        prov = {
            "kind": "trained", "trainer": "jambatalk train", "epochs_completed": p["epoch"],
            "global_step": p["global_step"], "seed": self.opts.seed,
            "data": {"dir": str(self.corpus.root), "layout": self.corpus.layout.kind,
                     "split_preset": self.corpus.split_preset, "train_subjects": self.train_subjects,
                     "train_takes": len(self.train_takes), "val_takes": len(self.val_takes), "fps": self.corpus.fps},
            "best_metric": self.opts.best_metric, "best_score": p["best_score"], "best_epoch": p["best_epoch"],
            "validation": p["last_validation"], "lip_reading": self.cfg.lip_reading.enabled,
            "template": "mean of the training subjects' neutral templates", "train_config": self.cfg.to_dict(),
        }
        if token is not None:
            prov["resume_token"] = token
        return prov

    def _write_checkpoint(self, path: Path, token: str | None) -> None:
        info = CheckpointInfo(config=self.model.config, licence=_LICENCES.get(self.corpus.layout.kind, OWN_LICENCE),
                              provenance=self._provenance(token),
                              topology=self.corpus.layout.topology(self.corpus.vertex_count),
                              name=self.out.name or "jambatalk")
        if hasattr(self.corpus, "head_info"):  # a blendshape corpus: the head and every source's licence
            info.head, info.sources = self.corpus.head_info(), self.corpus.training_sources()
            info.licence = self.corpus.licence_text()
        save_checkpoint(path, self.model, info, template=self.template)

    def _save(self) -> None:
        p = self.progress_state
        p["elapsed_seconds"] = self.elapsed()
        token = new_token(p["global_step"])
        self._write_checkpoint(self.out / "last.safetensors", token)
        save_training_state(self.out, token, self.optimizer, self._extra_modules(), p)
