# SPDX-License-Identifier: Apache-2.0
# Copyright 2026 The crossmodal_ros authors
"""Nexus (hierarchical multimodal VAE), Nexus-0, Forced Perceptual Dropout, sound SigmaVAE.

Reference: Vasco et al., "Leveraging hierarchy in multimodal generative models for effective
cross-modality inference" (docs/NEXUS_SPEC.md for the exact MHD configuration).

Two levels:

* bottom: one VAE per modality (:class:`BottomLevel`, networks.py) with latent ``z^m``;
* top: each (detached) bottom latent is mapped to a 512-d message, messages of the available
  modalities are aggregated (mean for Nexus, zero-filled concatenation for Nexus-0), a
  z_sigma encoder gives the shared latent, and one top decoder per modality reconstructs the
  bottom latent, which the bottom decoder turns into data.

During training, Forced Perceptual Dropout (:func:`fpd_keep_mask`) hides a random number of the
present modalities from the aggregator for a fraction ``rho`` of the samples (vectorised).

The sound VAE can be pretrained as a SigmaVAE (:func:`sigma_vae_loss`) and then frozen
(``sound_pretrain: true``, the reference setting), or trained jointly with a bottom loss.
"""
from __future__ import annotations

import torch
from torch import nn

from .. import units
from ..modalities import AUDIO, MODALITIES
from .base import (ModelConfigError, MultimodalModel, kl_standard_normal, kl_warmup, loss_report, masked,
                   mixture_moments, reparameterize, shared_sigma_gaussian_nll)
from .networks import DEFAULT_LATENT_DIMS, DEFAULT_REC_WEIGHTS, ModalityVAE, SharedEncoder, TopDecoder
from .phased import PretrainPhase

#: Config keys shared by every hierarchical model (Nexus, Nexus-0, MVAE, MMVAE).
HIERARCHICAL_DEFAULTS: dict = {
    "modalities": list(MODALITIES),
    "latent_dims": dict(DEFAULT_LATENT_DIMS),      # bottom latent size per modality
    "shared_dim": 32,                               # z_sigma
    "message_dim": 512,
    "hidden_dim": 512,                              # top-level MLP width
    "bottom_weights": dict(DEFAULT_REC_WEIGHTS),    # lambda
    "top_weights": dict(DEFAULT_REC_WEIGHTS),       # gamma
    "bottom_beta": 1.0,
    "top_beta": 1.0,
    "warmup_epochs": 20,
    "sound_pretrain": True,     # true: SigmaVAE pretraining stage, then frozen; false: joint
    "sound_beta": 10.0,         # KL weight of the SigmaVAE pretraining stage
    "min_log_sigma": -6.0,      # soft clip of the SigmaVAE log-sigma
    "top_input": "sample",      # sample (NEXUS_SPEC: the top sees sampled bottom latents) | mean
}


def check_hierarchical_config(cfg: dict) -> None:
    """Value checks for :data:`HIERARCHICAL_DEFAULTS` keys; raises ModelConfigError."""
    for key in ("shared_dim", "message_dim", "hidden_dim", *(f"latent_dims.{m}" for m in cfg["modalities"])):
        value = cfg["latent_dims"][key.split(".")[1]] if "." in key else cfg[key]
        if value < 1:
            raise ModelConfigError(f"config key 'model.{key}' must be >= 1, got {value}")
    for key in ("bottom_beta", "top_beta", "warmup_epochs", "sound_beta"):
        if cfg[key] < 0:
            raise ModelConfigError(f"config key 'model.{key}' must be >= 0, got {cfg[key]}")
    if cfg.get("top_input", "sample") not in ("sample", "mean"):
        raise ModelConfigError(f"config key 'model.top_input' must be 'sample' or 'mean', got {cfg['top_input']!r}")
    for group in ("bottom_weights", "top_weights"):
        for m, w in cfg[group].items():
            if w < 0:
                raise ModelConfigError(f"config key 'model.{group}.{m}' must be >= 0, got {w}")


def fpd_keep_mask(present: torch.Tensor, rho: float, generator: torch.Generator | None = None,
                  single: bool = False) -> torch.Tensor:
    """Forced Perceptual Dropout, vectorised over the batch.

    ``present`` (B, M) bool. Each sample with at least two present modalities is selected with
    probability ``rho``; a selected sample drops ``k ~ Uniform{1 .. n_present - 1}`` of its present
    modalities (``single``: ``k = n_present - 1``, it keeps exactly one), chosen uniformly without
    replacement. Returns the keep mask (B, M): a subset of ``present`` that is never empty where
    ``present`` is not.
    """
    if rho <= 0.0:
        return present
    b, m = present.shape
    dev = present.device
    n_present = present.sum(1)
    u = torch.rand(b, 2, device=dev, generator=generator)
    selected = (u[:, 0] < rho) & (n_present >= 2)
    k = 1 + torch.floor(u[:, 1] * (n_present - 1).clamp_min(1)).long()        # 1 .. n-1
    if single:
        k = (n_present - 1).clamp_min(1)
    scores = torch.rand(b, m, device=dev, generator=generator).masked_fill(~present, 2.0)
    rank = scores.argsort(1).argsort(1)                                          # absent ranks last
    drop = selected.unsqueeze(1) & (rank < k.unsqueeze(1))
    return present & ~drop


class BottomLevel(nn.Module):
    """The per-modality VAEs with their losses; the sound VAE frozen when pretrained.

    A frozen VAE has ``requires_grad=False`` and stays in eval mode (BatchNorm statistics fixed).
    ``audio_pretrained`` (a buffer) records that the pretraining stage has run.
    """

    def __init__(self, cfg: dict):
        super().__init__()
        self.modalities = tuple(cfg["modalities"])
        self.vaes = nn.ModuleDict({m: ModalityVAE(m, cfg["latent_dims"][m]) for m in self.modalities})
        self.weights = {m: float(cfg["bottom_weights"][m]) for m in self.modalities}
        self.frozen: set[str] = {AUDIO} if cfg["sound_pretrain"] and AUDIO in self.modalities else set()
        self.min_log_sigma = float(cfg["min_log_sigma"])
        self.register_buffer("audio_pretrained", torch.tensor(False))
        for m in self.frozen:
            self.vaes[m].requires_grad_(False)

    def latent_dim(self, m: str) -> int:
        return self.vaes[m].latent_dim

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.frozen:
            self.vaes[m].eval()
        return self

    def encode(self, m: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.vaes[m].encoder(x)

    def decode(self, m: str, z: torch.Tensor) -> torch.Tensor:
        return self.vaes[m].decoder(z)

    def reconstruction(self, m: str, x_hat: torch.Tensor, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Per-sample bottom reconstruction loss of modality ``m`` (unweighted; the unit's) -> (B,)."""
        return units.unit(m).reconstruction(x_hat, x, present, self.min_log_sigma)

    def forward_train(self, batch: dict, present: torch.Tensor, kl_weight: float, means: dict | None = None):
        """Encode every modality with a present sample; return latent samples and the loss.

        ``means``: a dict that receives every encoded modality's posterior mean (B, d_m).

        Returns ``(z, loss, logs)``: ``z`` maps modality -> sampled latent (B, d_m) for every
        modality present in at least one sample (absent rows are garbage, never used unmasked);
        ``loss`` is the per-sample bottom loss (B,) (lambda x reconstruction + beta x KL,
        absent modalities contribute 0; frozen VAEs contribute nothing).
        """
        z: dict[str, torch.Tensor] = {}
        total = torch.zeros(present.shape[0], device=present.device)
        logs: dict[str, torch.Tensor] = {}
        for i, m in enumerate(self.modalities):
            p = present[:, i]
            if m not in batch or not bool(p.any()):
                continue
            # absent rows are zeroed so that NaN/garbage cannot reach BatchNorm statistics
            x = torch.where(p.view(-1, *([1] * (batch[m].dim() - 1))), batch[m],
                            torch.zeros((), dtype=batch[m].dtype, device=p.device))
            mu, logvar = self.vaes[m].encoder(x)
            z[m] = reparameterize(mu, logvar)
            if means is not None:
                means[m] = mu
            if m in self.frozen:
                continue
            target = x
            if f"clean:{m}" in batch:  # denoising: an augmented input reconstructs its clean original
                c = batch[f"clean:{m}"]
                target = torch.where(p.view(-1, *([1] * (c.dim() - 1))), c, torch.zeros((), dtype=c.dtype,
                                                                                        device=p.device))
            rec = masked(self.reconstruction(m, self.vaes[m].decoder(z[m]), target, p), p)
            kl = masked(kl_standard_normal(mu, logvar), p)
            total = total + self.weights[m] * rec + kl_weight * kl
            logs[f"bottom/{m}"] = rec.detach()
            logs[f"kl/{m}"] = kl.detach()
        return z, total, logs


def sigma_vae_loss(vae: ModalityVAE, x: torch.Tensor, beta: float = 10.0, min_log_sigma: float = -6.0,
                   target: torch.Tensor | None = None):
    """SigmaVAE loss of one VAE on a batch ``x``: Gaussian NLL with batch-shared optimal sigma
    (soft-clipped) + ``beta`` x KL, each summed per sample and averaged over the batch.
    ``target`` (default ``x``): what the decoder must reconstruct - the clean original of an
    augmented ``x`` makes it a denoising VAE.

    Returns ``(loss, {"rec": float, "kl": float})``. Used for the sound pretraining stage.
    """
    mu, logvar = vae.encoder(x)
    x_hat = vae.decoder(reparameterize(mu, logvar))
    rec = shared_sigma_gaussian_nll(x_hat, x if target is None else target, None, min_log_sigma).mean()
    kl = kl_standard_normal(mu, logvar).mean()
    loss = rec + beta * kl
    return loss, {"rec": float(rec.detach()), "kl": float(kl.detach())}


class HierarchicalModel(MultimodalModel):
    """Shared machinery of the two-level models: bottom VAEs, top decoders, top losses."""

    DEFAULTS = HIERARCHICAL_DEFAULTS

    @classmethod
    def check_config(cls, cfg: dict) -> None:
        check_hierarchical_config(cfg)

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        cfg = self.config
        self.bottom = BottomLevel(cfg)
        self.top_decoders = nn.ModuleDict({
            m: TopDecoder(cfg["shared_dim"], self.bottom.latent_dim(m), cfg["hidden_dim"]) for m in self.modalities})
        self.top_weights = {m: float(cfg["top_weights"][m]) for m in self.modalities}
        self.min_log_sigma = float(cfg["min_log_sigma"])

    def bottom_latents(self, inputs: dict, present: torch.Tensor, sample: bool) -> dict:
        """Bottom latents (mean or sample) of every modality present in at least one sample."""
        z = {}
        for i, m in enumerate(self.modalities):
            p = present[:, i]
            if m in inputs and bool(p.any()):
                x = torch.where(p.view(-1, *([1] * (inputs[m].dim() - 1))), inputs[m],
                                torch.zeros((), dtype=inputs[m].dtype, device=p.device))
                mu, logvar = self.bottom.encode(m, x)
                z[m] = reparameterize(mu, logvar) if sample else mu
        return z

    def train_bottom(self, batch: dict, present: torch.Tensor, kl_weight: float):
        """The bottom level's training pass -> ``(z, per-sample loss, logs)``; ``z`` are the
        latents the top level sees, detached (stop-gradient between the levels): samples
        (``top_input: sample``, NEXUS_SPEC) or the posterior means (``top_input: mean``).
        """
        means: dict = {}
        z, per_sample, logs = self.bottom.forward_train(batch, present, kl_weight, means)
        if self.config.get("top_input", "sample") == "mean":
            z = means
        return {m: v.detach() for m, v in z.items()}, per_sample, logs

    def pretraining_phases(self) -> list[PretrainPhase]:
        """The sound SigmaVAE stage (:func:`sigma_vae_loss`, KL weight ``sound_beta``) while the
        sound VAE is frozen (``sound_pretrain: true``) and not yet pretrained; afterwards the VAE
        stays frozen and ``bottom.audio_pretrained`` is set (saved with the checkpoint).
        """
        if AUDIO not in self.bottom.frozen or bool(self.bottom.audio_pretrained):
            return []
        vae = self.bottom.vaes[AUDIO]
        beta, clip = self.config["sound_beta"], self.config["min_log_sigma"]

        def loss(module, batch, epoch=0):
            value, logs = sigma_vae_loss(module, batch[AUDIO], beta, clip, target=batch.get(f"clean:{AUDIO}"))
            return value, {**logs, "loss": float(value.detach())}

        def finish():
            vae.requires_grad_(False)
            self.bottom.audio_pretrained.fill_(True)
            self.train()  # re-applies the frozen-in-eval rule

        return [PretrainPhase("sound", vae, loss, (AUDIO,), "sound_pretrain", "sound SigmaVAE pretraining", finish)]

    def top_reconstruction(self, m: str, z_hat: torch.Tensor, target: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """Per-sample top reconstruction loss of bottom latent ``m`` (the unit's, weighted by gamma) -> (B,)."""
        rec = units.unit(m).latent_reconstruction(z_hat, target, p, self.min_log_sigma)
        return self.top_weights[m] * masked(rec, p)

    def decode(self, z: torch.Tensor, modalities=None) -> dict:
        """Top decoders give bottom latents, bottom decoders give data (label: logits)."""
        return {m: self.bottom.decode(m, self.top_decoders[m](z)) for m in self.check_decode(z, modalities)}


class Nexus(HierarchicalModel):
    """Nexus: mean aggregation of per-modality messages, FPD, stop-gradient between levels.

    ``aggregator: concat`` gives Nexus-0 (messages concatenated, missing ones zero-filled).
    """

    kind = "nexus"
    #: ``infer_combine``: how :meth:`encode` combines several given modalities. ``aggregate``
    #: (NEXUS_SPEC): one z_sigma posterior from the aggregate of their messages. ``mixture``: the
    #: moment-matched uniform mixture of the single-modality posteriors (each the spec's encoder on
    #: one message), as MMVAE infers; training is unchanged (it only ever uses the aggregate).
    #: ``fpd_sizes``: ``uniform`` (NEXUS_SPEC: a selected sample drops 1 .. n-1 modalities) or
    #: ``single`` (a selected sample keeps exactly one modality).
    #: ``top_audio_data_weight`` (default 0: NEXUS_SPEC, the top level is trained on bottom latents
    #: only): also decode the top level's audio latent with the (frozen) sound decoder and add this
    #: weight x the sound unit's reconstruction loss of the clean mel. From a label or an image the
    #: top level predicts the class's mean audio latent, whose decoded sound can sit between two
    #: words, while the mean mel of a class is a clear word (docs/results/audio_path/README.md).
    DEFAULTS = {**HIERARCHICAL_DEFAULTS, "aggregator": "mean", "fpd_rho": 0.2, "infer_combine": "aggregate",
                "fpd_sizes": "uniform", "top_audio_data_weight": 0.0}

    @classmethod
    def check_config(cls, cfg: dict) -> None:
        check_hierarchical_config(cfg)
        if cfg["aggregator"] not in ("mean", "concat"):
            raise ModelConfigError(f"config key 'model.aggregator' must be 'mean' or 'concat', got "
                                   f"{cfg['aggregator']!r}")
        if not 0.0 <= cfg["fpd_rho"] <= 1.0:
            raise ModelConfigError(f"config key 'model.fpd_rho' must be in [0, 1], got {cfg['fpd_rho']}")
        if cfg["fpd_sizes"] not in ("uniform", "single"):
            raise ModelConfigError(f"config key 'model.fpd_sizes' must be 'uniform' or 'single', got "
                                   f"{cfg['fpd_sizes']!r}")
        if cfg["infer_combine"] not in ("aggregate", "mixture"):
            raise ModelConfigError(f"config key 'model.infer_combine' must be 'aggregate' or 'mixture', got "
                                   f"{cfg['infer_combine']!r}")
        weight = cfg["top_audio_data_weight"]
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight < float("inf"):
            raise ModelConfigError(f"config key 'model.top_audio_data_weight' must be a number >= 0, got {weight!r}")

    def __init__(self, config: dict | None = None):
        super().__init__(config)
        cfg = self.config
        d = cfg["message_dim"]
        self.messages = nn.ModuleDict({m: nn.Linear(self.bottom.latent_dim(m), d) for m in self.modalities})
        self.concat = cfg["aggregator"] == "concat"
        agg_dim = d * len(self.modalities) if self.concat else d
        self.shared_encoder = SharedEncoder(agg_dim, cfg["shared_dim"], cfg["hidden_dim"])
        self.fpd_rho = float(cfg["fpd_rho"])
        self.infer_mixture = cfg["infer_combine"] == "mixture"

    def aggregate(self, z: dict, keep: torch.Tensor) -> torch.Tensor:
        """Messages of the kept modalities -> aggregate (B, 512) mean or (B, M*512) concat."""
        b = keep.shape[0]
        d = self.config["message_dim"]
        dtype = next(iter(z.values())).dtype
        parts = []
        for i, m in enumerate(self.modalities):
            if m in z:
                msg = torch.where(keep[:, i:i + 1], self.messages[m](z[m]), torch.zeros((), dtype=dtype,
                                                                                        device=keep.device))
            else:
                msg = keep.new_zeros((b, d), dtype=dtype) if self.concat else None
            if msg is not None:
                parts.append(msg)
        if self.concat:
            return torch.cat(parts, dim=1)
        return torch.stack(parts, 0).sum(0) / keep.sum(1, keepdim=True).clamp_min(1).to(dtype)

    def encode(self, inputs: dict, mask: torch.Tensor | None = None, sample: bool = False):
        present = self.presence(inputs, mask)
        z = self.bottom_latents(inputs, present, sample)
        if self.infer_mixture:
            return self.mixture_encode(z, present)
        return self.shared_encoder(self.aggregate(z, present))

    def mixture_encode(self, z: dict, present: torch.Tensor):
        """``infer_combine: mixture``: every given modality's own z_sigma posterior (the encoder on
        its message alone), one batched encoder call, combined by :func:`mixture_moments` with
        equal weights over each row's present modalities.
        """
        idx = [i for i, m in enumerate(self.modalities) if m in z]
        b = present.shape[0]
        eye = torch.eye(len(self.modalities), dtype=torch.bool, device=present.device)
        keep = torch.cat([present & eye[i] for i in idx], 0)                        # (K*B, M)
        mu, logvar = self.shared_encoder(self.aggregate({m: v.repeat(len(idx), 1) for m, v in z.items()}, keep))
        mu, logvar = mu.view(len(idx), b, -1).transpose(0, 1), logvar.view(len(idx), b, -1).transpose(0, 1)
        weight = present[:, idx].to(mu.dtype)
        return mixture_moments(mu, logvar, weight / weight.sum(1, keepdim=True).clamp_min(1))

    def _clean_latents(self, batch: dict, present: torch.Tensor, z: dict, sample: bool = True) -> dict:
        """Top-level targets: the bottom latents of the clean originals where the batch carries
        them (``clean:<modality>``, augmented training), else those of the inputs ``z``
        (samples, or the posterior means when ``sample`` is false).
        """
        out = dict(z)
        with torch.no_grad():
            for i, m in enumerate(self.modalities):
                if m in z and f"clean:{m}" in batch:
                    p = present[:, i]
                    c = batch[f"clean:{m}"]
                    x = batch[m]
                    same = (c == x).flatten(1).all(1)  # rows drawn clean this epoch keep their sample
                    if bool(same.all()):
                        continue
                    c = torch.where(p.view(-1, *([1] * (c.dim() - 1))), c, torch.zeros((), dtype=c.dtype,
                                                                                       device=p.device))
                    mu, logvar = self.bottom.encode(m, c)
                    out[m] = torch.where(same.unsqueeze(1), z[m], reparameterize(mu, logvar) if sample else mu)
        return out

    def loss(self, batch: dict, mask: torch.Tensor | None = None, epoch: float = 0):
        """Negative ELBO of a batch (Nexus's loss). Keys ``clean:<modality>`` (augmented
        training) give the clean originals: reconstructions at both levels target them while
        the encoders see the augmented inputs (denoising).
        """
        present = self.presence(batch, mask)
        w = kl_warmup(epoch, self.config["warmup_epochs"])
        z, per_sample, logs = self.train_bottom(batch, present, w * self.config["bottom_beta"])
        sample = self.config.get("top_input", "sample") == "sample"
        keep = (fpd_keep_mask(present, self.fpd_rho, single=self.config["fpd_sizes"] == "single")
                if self.training else present)
        mu, logvar = self.shared_encoder(self.aggregate(z, keep))
        targets = self._clean_latents(batch, present, z, sample)
        zs = reparameterize(mu, logvar)
        kl_top = kl_standard_normal(mu, logvar)
        per_sample = per_sample + w * self.config["top_beta"] * kl_top
        logs["kl/top"] = kl_top.detach()
        data_weight = float(self.config["top_audio_data_weight"])
        for i, m in enumerate(self.modalities):
            if m in z:
                z_hat = self.top_decoders[m](zs)
                rec = self.top_reconstruction(m, z_hat, targets[m], present[:, i])
                per_sample = per_sample + rec
                logs[f"top/{m}"] = rec.detach()
                if m == AUDIO and data_weight > 0.0:
                    # through the sound decoder (frozen or not, its gradient reaches the top level)
                    mel = self.bottom.decode(AUDIO, z_hat)
                    clean = batch.get(f"clean:{AUDIO}", batch[AUDIO])
                    data = data_weight * masked(self.bottom.reconstruction(AUDIO, mel, clean, present[:, i]),
                                                present[:, i])
                    per_sample = per_sample + data
                    logs["top/audio_data"] = data.detach()
        return loss_report(per_sample.mean(), logs, kl_weight=w)


class Nexus0(Nexus):
    """Nexus-0: Nexus with the concatenation aggregator (the paper's ablation)."""

    kind = "nexus0"
    DEFAULTS = {**Nexus.DEFAULTS, "aggregator": "concat"}

    @classmethod
    def check_config(cls, cfg: dict) -> None:
        super().check_config(cfg)
        if cfg["aggregator"] != "concat":
            raise ModelConfigError("config key 'model.aggregator' must be 'concat' for kind 'nexus0' "
                                   "(use kind 'nexus' for the mean aggregator)")
