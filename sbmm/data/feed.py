"""The two-scene short-video feed: the book's running example, with ground truth for
every impression.

A user scrolls a discovery feed (scene 1). On each impression (a user, an item's card)
the user may **stay** on the card, for a **stay time**, and may **click** it; a click
opens the video page (scene 2), where the user watches for a **play time** and
may **like** the video:

    impression ─► stay? ─► stay_time ─► click? ─► play_time ─► like?
                 (scene 1: discovery feed)       (scene 2: video page, exists only
                                                  after a click)

Use::

    data = FeedSimulator(task_correlation=0.2).simulate(100_000, seed=0)   # a FeedData
    model = sbmm.SharedBottom(data.feature_specs, towers)
    sbmm.fit(model, data.train, data.valid)

and, to judge a ranking, requests of the same world: a user and the candidates a feed
would rank for them, each with its truth (the fusion chapter, `sbmm.fusion`)::

    requests = FeedSimulator().requests(1_000, n_candidates=50, seed=0, stream=1)
    requests.grid(requests.batch.truth["attainable_p_click"])   # (1000, 50)

How the world is made (all of it drawn from `seed`):

- Users have a demographic group (age bucket × gender), a city tier, an activity level
  and two taste vectors: the *click taste* (what makes a card appealing) and
  the *quality taste* (what makes a video worth watching and liking), ``quality_taste =
  ρ·click_taste + sqrt(1 − ρ²)·other_taste`` with ρ = `task_correlation`. Tastes are
  partly shared within a demographic group.
- Items have an author (a few authors make many items), a category
  (mostly their author's), 1 to `max_tags` distinct tags (mostly their category's), a
  duration, a genuine appeal, a quality (correlated with the appeal by ρ too) and
  a *bait* score: a cover that draws clicks to a video that does not repay them. An
  item's latent vector sums its category's, tags', author's and own vectors, so side
  features carry signal about it. The log duration is log 30 s plus d·(a category's
  N(0, 0.5²) and the item's own N(0, 0.5²)), d = `duration_spread`: a length that
  nothing which draws a click depends on.
- Impressions pick users in proportion to their activity and items in proportion to
  their popularity.

Per impression, with σ the logistic function, g = sqrt(1.25) the std of the genuine part
(taste term + item effect), bait ~ N(0, 1), and ε a fresh N(0, noise²) draw in each line
(the noise is part of the truth: it is what no feature explains):

    appeal  = (click_taste·item / sqrt(dim)   + item appeal  + clickbait·g·bait)
              / sqrt(1 + clickbait²)
    quality = (quality_taste·item / sqrt(dim) + item quality − clickbait·g·bait)
              / sqrt(1 + clickbait²)

    p_stay                = σ(stay_bias + 0.5·appeal + 0.8·activity
                              + age and city-tier effects + ε)
    p_click               = p_stay · σ(click_bias + appeal + ε)        (click ⇒ stay)
    p_like_given_click    = σ(like_bias + quality + user like propensity
                              + age effect + ε)
    stay_time_given_stay  = 2 s · exp(0.3·appeal + ε)
    play_time_given_click = duration · σ(watch_bias + 0.8·quality
                                         − 0.5·duration z-score + ε)

With `unobserved_selection` s > 0, a per-impression u ~ N(0, s²), drawn apart from
everything else and carried by no feature, is added to both the click logit and the
like logit. Who clicks then depends on something that also moves the like, which the
features cannot see: given the features, clicked impressions like more than the
unclicked ones would have. (Bait also selects clicks, but bait is an item's, so the
features can explain it.)

The duration enters the play time twice: as its scale, and through its z-score over
the catalogue (longer videos are watched to a smaller fraction). The z-score does not
change with d (to float rounding), so `duration_spread` changes the play time and
nothing else: at d = 1 the true p_click and the expected play time per impression,
p_click · play_time_given_click, rank impressions alike (Spearman ≈ 0.94: who clicks is
who watches), at d = 3 much less (≈ 0.74; videos then last from a second to
half an hour), so ranking by clicks and ranking by watch time part ways.

The taste terms correlate by ρ. clickbait² is the bait's variance relative to the
genuine part's. As it grows, the spread of appeal and quality stays put, but appeal and
quality, which correlate by ρ at clickbait 0, tend to correlation −1: clicked items are
better than average at clickbait 0 (for ρ > 0) and worse than average at high clickbait.
(The feed shows popular, hence baity, items more, so the mean p_like_given_click over
impressions falls too: from 9% to 5% as clickbait goes from 0 to 3.)

Labels are drawn from exactly these quantities: stay ~ Bernoulli(p_stay); click ~
Bernoulli(p_click / p_stay) among stays; like ~ Bernoulli(p_like_given_click) among
clicks. A time T of mean E is lognormal, ``log T ~ N(log E − s²/2, s²)`` with s =
`stay_time_sigma` or `play_time_sigma`, so that E[T] = E exactly; a play time may exceed
the duration (replays).

Rates of the default world (1M impressions, seed 0; other seeds draw other worlds, whose
rates differ by a few points): stay ≈ 37% of impressions, click ≈ 9% of impressions
(a quarter of stays), like ≈ 14% of clicks; stay time mean ≈ 2.8 s (median ≈ 1.7 s),
play time mean ≈ 19 s (median ≈ 10 s): heavy right tails, as in real logs.

The default world is small (300 users, 200 items, tastes of width 4), so that a log of a
few hundred thousand impressions shows each user and item many times: a shared-bottom
model then closes most of the gap to what the features can explain (the simulators
chapter measures it). Larger worlds are a knob away
(``FeedSimulator(n_users=2_000, n_items=1_000)``).

Columns (one row per impression):

    features  user_id, item_id, author_id      int32 (N,)
              category, age, gender, city_tier int16 (N,)
              tags                             int16 (N, max_tags), padded with -1
              duration                         float32 (N,) log seconds, z-scored
                                                            over the catalogue
              popularity                       float32 (N,) log past views, z-scored
                                                            over the catalogue
                                                            (tracks the item's click
                                                            appeal)
              activity                         float32 (N,) log daily minutes,
                                                            z-scored over the users
                                                            (tracks the user's stay
                                                            propensity)
    labels    stay, click, like                float32 (N,) 0./1. (float32 so losses
                                                            take them as is)
              stay_time, play_time             float32 (N,) seconds; 0 exactly when
                                                            stay / click is 0
    truth     p_stay, p_click, p_like_given_click, stay_time_given_stay,
              play_time_given_click
                                               float32 (N,), defined for every
                                               impression, including the
                                               counterfactual ones (a like never
                                               given the chance)
              attainable_ + each truth column  float32 (N,) the same, given the features

The attainable truth. The features fix the user and the item, hence every latent
attribute: they leave ε alone unexplained. So the best any model of the features can
predict is each quantity with ε integrated out (ε ~ N(0, noise²), independent across
the lines):

    attainable_p_stay                = E[σ(stay logit + ε)]      (by quadrature)
    attainable_p_click               = attainable_p_stay · E[σ(click logit + ε)]
    attainable_p_like_given_click    = E[σ(like logit + ε)]
    attainable_stay_time_given_stay  = 2 s · exp(0.3·appeal + noise²/2)   (lognormal)
    attainable_play_time_given_click = duration · E[σ(watch logit + ε)]

(with s > 0, the click and like lines integrate u too: E[σ(z + ε + u)], ε + u ~
N(0, noise² + s²)). So attainable_p_like_given_click is the counterfactual p(like |
click) of every impression, clicked or not: what a click on it would lead to, averaged
over what the features do not tell. Among clicked impressions the likes exceed it when
s > 0; that gap is the bias a post-click model trained on clicks alone inherits.

Against the labels, the noisy truth beats it (it knows ε); no model can.
`FeedData.truth_specs` pairs each label with its two truth columns and its parent (like
is scored among clicks); `FeedSimulator.latent` gives the noise-free logits of any
(user, item) pairs of a world.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Mapping

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from ..inputs import Categorical, Dense, Feature, MultiCategorical
from .batch import Batch
from .truth import ATTAINABLE_PREFIX, TruthSpec, truth_specs

__all__ = [
    "FEED_TRUTH_SPECS",
    "FeedConfig",
    "FeedData",
    "FeedSimulator",
    "Latent",
    "Requests",
    "feed_features",
]

# buckets <18, 18-24, 25-29, 30-39, 40-49, 50-59, 60+
AGE_SHARES = (0.10, 0.30, 0.22, 0.20, 0.10, 0.05, 0.03)
GENDER_SHARES = (0.65, 0.35)  # female, male
# tier 1, new tier 1, tier 2, tier 3, tier 4 and below
CITY_TIER_SHARES = (0.15, 0.20, 0.25, 0.20, 0.20)
INT16_MAX = 2**15 - 1
# std of an item's genuine appeal and of its quality (the taste terms have std 1)
ITEM_EFFECT_STD = 0.5
# std of the genuine part of appeal and quality
GENUINE_STD = float(np.sqrt(1 + ITEM_EFFECT_STD**2))
STAY_TIME_SCALE = 2.0  # seconds: the stay-time mean at appeal 0 and ε = 0
SELECTION_STREAM = 0x5E1EC7  # the generator of u is seeded by (seed, this)
REQUEST_STREAM = 0x4E0E57  # ranking requests are drawn by (seed, this, stream)
FEED_TRUTH_SPECS = truth_specs(  # each label, its truth columns, and the label it needs
    TruthSpec("stay", "p_stay", "attainable_p_stay"),
    TruthSpec(
        "stay_time",
        "stay_time_given_stay",
        "attainable_stay_time_given_stay",
        parent="stay",
        kind="regression",
    ),
    TruthSpec("click", "p_click", "attainable_p_click"),
    TruthSpec(
        "play_time",
        "play_time_given_click",
        "attainable_play_time_given_click",
        parent="click",
        kind="regression",
    ),
    TruthSpec(
        "like", "p_like_given_click", "attainable_p_like_given_click", parent="click"
    ),
)


@dataclass(frozen=True)
class FeedConfig:
    """The world a `FeedSimulator` draws: sizes, the knobs the book turns, and base
    rates."""

    n_users: int = 300  # users; ids in [0, n_users). Few enough that each is seen
    #                     often: a model learns a user's taste from their id's embedding
    n_items: int = 200  # items (videos); ids in [0, n_items)
    n_authors: int = 30  # authors; a few make many items (Zipf-like shares)
    n_categories: int = 16  # item categories
    n_tags: int = 64  # tag vocabulary; each tag belongs mostly to one category
    max_tags: int = 4  # an item has 1 to max_tags distinct tags
    latent_dim: int = 4  # width of the latent taste and item vectors
    task_correlation: float = 0.7  # ρ in [-1, 1]: agreement of the quality taste
    #                                (likes, play time) with the click taste: -1
    #                                opposed, 0 unrelated, 1 identical
    clickbait: float = 0.3  # >= 0: weight of bait (relative to the genuine part) in
    #                         appeal, where it raises clicks, and in quality, where it
    #                         lowers likes and play time: the source of sample-selection
    #                         bias (higher: clicked items are chosen more for their
    #                         bait, and so are worse than average, not better)
    noise: float = 0.5  # >= 0: std of the unexplained per-impression noise on every
    #                     logit / log-mean
    unobserved_selection: float = 0.0  # >= 0: std of a per-impression latent u that
    #                     no feature carries, added to the click logit and to the like
    #                     logit alike: given the features, clicked impressions then
    #                     like more than unclicked ones would (selection the features
    #                     cannot explain). 0: none, and no draw is made
    stay_bias: float = -1.0  # base logit of stay (sets the stay rate)
    click_bias: float = -2.0  # base logit of click among stays (sets the click rate)
    like_bias: float = -3.2  # base logit of like among clicks (lower it to make likes
    #                          scarce)
    watch_bias: float = 0.0  # base logit of the expected fraction of the video watched
    stay_time_sigma: float = 0.8  # lognormal spread of the stay time (larger: heavier
    #                               tail)
    play_time_sigma: float = 0.9  # lognormal spread of the play time
    duration_spread: float = 1.0  # > 0: multiplies the spread of the videos' log
    #                     durations (std 0.71 at 1, half by category, half by item).
    #                     Duration moves the play time and nothing that draws a click,
    #                     so a larger spread decouples the expected play time from
    #                     p_click (their Spearman: 0.94 at 1, 0.74 at 3). 1 draws the
    #                     world of earlier versions bit for bit
    split: tuple[float, ...] = (0.8, 0.1, 0.1)  # train / valid / test fractions of the
    #                                             impressions

    def __post_init__(self) -> None:
        for name in (
            "n_users",
            "n_items",
            "n_authors",
            "n_categories",
            "n_tags",
            "max_tags",
            "latent_dim",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("n_categories", "n_tags"):
            if getattr(self, name) > INT16_MAX:
                raise ValueError(
                    f"{name} must be at most {INT16_MAX} (ids are int16), got "
                    f"{getattr(self, name)}"
                )
        if self.max_tags > self.n_tags:
            raise ValueError(
                f"max_tags must be at most n_tags ({self.n_tags}), got {self.max_tags}"
            )
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "split" and not (
                isinstance(value, (int, float)) and np.isfinite(value)
            ):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}")
        if not -1 <= self.task_correlation <= 1:
            raise ValueError(
                f"task_correlation must be in [-1, 1], got {self.task_correlation}"
            )
        for name in ("clickbait", "noise", "unobserved_selection"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("stay_time_sigma", "play_time_sigma", "duration_spread"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        object.__setattr__(self, "split", tuple(self.split))
        if (
            not self.split
            or any(f <= 0 for f in self.split)
            or abs(sum(self.split) - 1) > 1e-6
        ):
            raise ValueError(
                f"split must be positive fractions that sum to 1, got {self.split}"
            )


def feed_features(
    config: FeedConfig,
    *,
    id_dim: int = 16,
    content_dim: int = 8,
    attribute_dim: int = 4,
) -> list[Feature]:
    """The feed's feature declarations, with embedding widths: `id_dim` for user, item
    and author ids, `content_dim` for category and tags (mean-pooled), `attribute_dim`
    for age, gender and city tier."""
    return [
        Categorical("user_id", config.n_users, id_dim),
        Categorical("item_id", config.n_items, id_dim),
        Categorical("author_id", config.n_authors, id_dim),
        Categorical("category", config.n_categories, content_dim),
        MultiCategorical("tags", config.n_tags, content_dim),
        Categorical("age", len(AGE_SHARES), attribute_dim),
        Categorical("gender", len(GENDER_SHARES), attribute_dim),
        Categorical("city_tier", len(CITY_TIER_SHARES), attribute_dim),
        Dense("duration"),
        Dense("popularity"),
        Dense("activity"),
    ]


@dataclass
class FeedData:
    """A simulated feed log: the whole `batch`, its train / valid / test parts, and the
    declarations.

    `features`, `labels`, `truth` are the whole batch's dicts; `feature_specs` declares
    the features for a model (`sbmm.SharedBottom(data.feature_specs, towers)`); `config`
    and `seed` made the data.
    """

    batch: Batch
    train: Batch
    valid: Batch
    test: Batch
    feature_specs: list[Feature]
    config: FeedConfig
    seed: int

    @property
    def features(self) -> dict[str, torch.Tensor]:
        return self.batch.features

    @property
    def labels(self) -> dict[str, torch.Tensor]:
        return self.batch.labels

    @property
    def truth(self) -> dict[str, torch.Tensor]:
        return self.batch.truth

    @property
    def truth_specs(self) -> Mapping[str, TruthSpec]:
        """{label: TruthSpec}: each label's truth and attainable columns, and parent."""
        return FEED_TRUTH_SPECS

    def __len__(self) -> int:
        return len(self.batch)

    def to(self, device: torch.device | str) -> FeedData:
        """A copy with every batch on `device`."""
        return replace(
            self,
            **{
                k: getattr(self, k).to(device)
                for k in ("batch", "train", "valid", "test")
            },
        )


@dataclass(frozen=True)
class Requests:
    """Ranking requests: `batch` holds R · C rows, request by request (rows r·C to
    r·C + C − 1 are request r's candidates, all for one user), with features, truth
    and labels as a log has them; C = `n_candidates`. `grid` turns a column of the
    batch, or a prediction for it, into (R, C)."""

    batch: Batch
    n_candidates: int

    def __len__(self) -> int:
        """R, the number of requests."""
        return len(self.batch) // self.n_candidates

    def grid(self, column: Tensor | ArrayLike) -> np.ndarray:
        """(R · C,) → (R, C) float64: one row per request, one column per candidate."""
        values = torch.as_tensor(column).detach().double().cpu().numpy()
        if values.shape != (len(self.batch),):
            raise ValueError(
                f"expected one value per candidate, shape ({len(self.batch)},), got "
                f"{values.shape}"
            )
        return values.reshape(len(self), self.n_candidates)


def _exposure(users: dict, items: dict) -> tuple[np.ndarray, np.ndarray]:
    """The probabilities with which an impression shows each user (active users scroll
    more) and each item (the recommender favours popular items)."""
    user_weight = np.exp(0.5 * users["activity"])
    item_weight = np.exp(0.5 * items["popularity"])
    return user_weight / user_weight.sum(), item_weight / item_weight.sum()


def _check_seed(seed: int) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")


def _zscore(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / max(float(x.std()), 1e-12)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _expected_sigmoid(z: np.ndarray, noise: float) -> np.ndarray:
    """E[σ(z + ε)] for ε ~ N(0, noise²), elementwise over the logits `z` (any shape), by
    Gauss–Hermite quadrature, accurate to 1e-7. σ has poles at ±iπ, which come closer to
    the real axis, on the scale of ε, as the noise grows: hence 16 + 8·noise² nodes."""
    from scipy.special import roots_hermitenorm  # SciPy loads when a world is drawn

    n_nodes = 16 + math.ceil(8 * noise**2)
    nodes, weights = roots_hermitenorm(n_nodes)  # for the weight function exp(−x²/2)
    weights = weights / math.sqrt(2 * math.pi)  # a N(0, 1) expectation: they sum to 1
    mean = np.zeros_like(z)
    for node, weight in zip(nodes, weights):
        if weight > 1e-18:  # nodes far in the tails contribute nothing
            mean += weight * _sigmoid(z + noise * node)
    return mean


@dataclass(frozen=True, eq=False)
class Latent:
    """What the features of N impressions determine: each logit and log-mean before its
    noise ε. float64 (N,) each:

    stay, click, like, watch: the logits of stay, of click among stays, of like among
               clicks and of the fraction of the video watched;
    stay_time: the log of the stay-time mean, in units of STAY_TIME_SCALE;
    duration:  the video's length in seconds.
    """

    stay: np.ndarray
    click: np.ndarray
    like: np.ndarray
    stay_time: np.ndarray
    watch: np.ndarray
    duration: np.ndarray

    def truth(self, eps: np.ndarray) -> dict[str, np.ndarray]:
        """The truth given the noise `eps` (5, ...) of the stay, click, like, stay-time
        and watch lines, eps[k] broadcasting against (N,): {"p_stay",
        "p_click_given_stay", "p_like_given_click", "stay_time_given_stay",
        "play_time_given_click"}, each of the broadcast shape."""
        return {
            "p_stay": _sigmoid(self.stay + eps[0]),
            "p_click_given_stay": _sigmoid(self.click + eps[1]),
            "p_like_given_click": _sigmoid(self.like + eps[2]),
            "stay_time_given_stay": STAY_TIME_SCALE * np.exp(self.stay_time + eps[3]),
            "play_time_given_click": self.duration * _sigmoid(self.watch + eps[4]),
        }

    def attainable(
        self, noise: float, unobserved_selection: float = 0.0
    ) -> dict[str, np.ndarray]:
        """The attainable truth: `truth(eps)`'s keys, each its expectation (N,) over
        independent ε ~ N(0, noise²), and over u ~ N(0, unobserved_selection²) on the
        click and like lines; in closed form for the lognormal stay time, by quadrature
        otherwise."""
        mean = lambda z: _expected_sigmoid(z, noise)  # noqa: E731
        # ε + u on the click and like lines
        spread = math.sqrt(noise**2 + unobserved_selection**2)
        stay_time = STAY_TIME_SCALE * np.exp(self.stay_time + noise**2 / 2)  # lognormal
        return {
            "p_stay": mean(self.stay),
            "p_click_given_stay": _expected_sigmoid(self.click, spread),
            "p_like_given_click": _expected_sigmoid(self.like, spread),
            "stay_time_given_stay": stay_time,
            "play_time_given_click": self.duration * mean(self.watch),
        }


def _truth_columns(truth: dict[str, np.ndarray], prefix: str = "") -> dict[str, Tensor]:
    """The batch's truth columns (N,) float32, each name prefixed with `prefix`, from a
    `Latent.truth` or `Latent.attainable` dict."""
    values = {
        "p_stay": truth["p_stay"],
        "stay_time_given_stay": truth["stay_time_given_stay"],
        "p_click": truth["p_stay"] * truth["p_click_given_stay"],  # click ⇒ stay
        "play_time_given_click": truth["play_time_given_click"],
        "p_like_given_click": truth["p_like_given_click"],
    }
    f32 = lambda v: torch.from_numpy(v.astype(np.float32))  # noqa: E731
    return {prefix + k: f32(v) for k, v in values.items()}


class FeedSimulator:
    """Draws feed logs from a `FeedConfig`: ``FeedSimulator(config,
    **overrides).simulate(n, seed)``.

    Keyword overrides replace config fields, so ``FeedSimulator(clickbait=2.0)`` is the
    default world with more clickbait.
    """

    def __init__(self, config: FeedConfig | None = None, **overrides):
        config = config if config is not None else FeedConfig()
        unknown = set(overrides) - {f.name for f in fields(FeedConfig)}
        if unknown:
            raise ValueError(f"unknown FeedConfig knob(s) {sorted(unknown)}")
        self.config = replace(config, **overrides)

    def simulate(self, n_impressions: int, seed: int = 0) -> FeedData:
        """`n_impressions` impressions of a world drawn from `seed`
        (same seed, same data), split into train / valid / test by `config.split`
        (shuffled with `seed`)."""
        if (
            not isinstance(n_impressions, int)
            or isinstance(n_impressions, bool)
            or n_impressions < 1
        ):
            raise ValueError(
                f"n_impressions must be an integer >= 1, got {n_impressions!r}"
            )
        _check_seed(seed)
        rng = np.random.default_rng(seed)
        users, items = self._users(rng), self._items(rng)
        # u from a stream of its own: the knob changes nothing else of the world
        selection = np.random.default_rng([seed, SELECTION_STREAM])
        batch = self._impressions(rng, users, items, n_impressions, selection)
        train, valid, test = batch.split(self.config.split, seed=seed)
        return FeedData(
            batch, train, valid, test, feed_features(self.config), self.config, seed
        )

    def latent(self, user_id: ArrayLike, item_id: ArrayLike, seed: int = 0) -> Latent:
        """The noise-free logits of the impressions (user_id[n], item_id[n]), ids (N,),
        in the world that `simulate(·, seed)` draws. ``.attainable(config.noise,
        config.unobserved_selection)`` of the result is their attainable truth,
        ``.truth(eps)`` their truth for a noise draw `eps` (5, N) (u added to eps[1]
        and eps[2])."""
        _check_seed(seed)
        u, i = np.asarray(user_id, dtype=np.int64), np.asarray(item_id, dtype=np.int64)
        if u.ndim != 1 or u.shape != i.shape:
            raise ValueError(
                "user_id and item_id must be 1-d and of one length, "
                f"got {u.shape}, {i.shape}"
            )
        c = self.config
        for name, ids, vocab in (("user_id", u, c.n_users), ("item_id", i, c.n_items)):
            if ids.size and not (0 <= ids.min() and ids.max() < vocab):
                raise ValueError(
                    f"{name} must lie in [0, {vocab}), got [{ids.min()}, {ids.max()}]"
                )
        rng = np.random.default_rng(seed)
        users, items = self._users(rng), self._items(rng)
        return self._latent(users, items, u, i)

    def requests(
        self,
        n_requests: int,
        n_candidates: int = 50,
        seed: int = 0,
        stream: int = 0,
    ) -> Requests:
        """`n_requests` ranking requests in the world that `simulate(·, seed)` draws:
        each a user (drawn as impressions draw them, by activity) and `n_candidates`
        distinct items (drawn by popularity, as the feed shows them), every candidate
        with its features, truth and labels as an impression has them. `stream`
        draws other requests of the same world (validation 0, test 1, say)."""
        for name, value, low in (
            ("n_requests", n_requests, 1),
            ("n_candidates", n_candidates, 2),
            ("stream", stream, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        _check_seed(seed)
        c = self.config
        if n_candidates > c.n_items:
            raise ValueError(
                f"n_candidates must be at most n_items ({c.n_items}), "
                f"got {n_candidates}"
            )
        world = np.random.default_rng(seed)
        users, items = self._users(world), self._items(world)
        rng = np.random.default_rng([seed, REQUEST_STREAM, stream])
        user_weight, item_weight = _exposure(users, items)
        who = rng.choice(c.n_users, n_requests, p=user_weight)  # (R,)
        # C distinct items per request, drawn by weight: Gumbel top-C
        keys = np.log(item_weight) + rng.gumbel(size=(n_requests, c.n_items))
        shown = np.argpartition(-keys, n_candidates - 1, 1)[:, :n_candidates]  # (R, C)
        selection = np.random.default_rng([seed, SELECTION_STREAM, stream])
        u, i = np.repeat(who, n_candidates), shown.reshape(-1)  # (R·C,) each
        return Requests(self._rows(rng, users, items, u, i, selection), n_candidates)

    def _users(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The user table: attributes, activity, and the click and quality tastes
        (n_users, latent_dim)."""
        c, n, k = self.config, self.config.n_users, self.config.latent_dim
        age = rng.choice(len(AGE_SHARES), n, p=AGE_SHARES)
        gender = rng.choice(len(GENDER_SHARES), n, p=GENDER_SHARES)
        group = age * len(GENDER_SHARES) + gender  # (n,) demographic group

        # (n, k), unit variance per dimension, 40% shared within the group
        def taste() -> np.ndarray:
            centres = rng.standard_normal((len(AGE_SHARES) * len(GENDER_SHARES), k))
            return np.sqrt(0.4) * centres[group] + np.sqrt(0.6) * rng.standard_normal(
                (n, k)
            )

        click_taste, other_taste = taste(), taste()
        rho = c.task_correlation
        city_tier = rng.choice(len(CITY_TIER_SHARES), n, p=CITY_TIER_SHARES)
        activity = rng.standard_normal(n)  # latent stay propensity
        # logit shifts by age bucket and city tier
        age_stay = 0.3 * rng.standard_normal(len(AGE_SHARES))
        tier_stay = 0.3 * rng.standard_normal(len(CITY_TIER_SHARES))
        age_like = 0.3 * rng.standard_normal(len(AGE_SHARES))
        return {
            "age": age,
            "gender": gender,
            "city_tier": city_tier,
            "activity": activity,
            # a noisy log daily minutes
            "activity_feature": _zscore(activity + 0.5 * rng.standard_normal(n)),
            "click_taste": click_taste,
            "quality_taste": rho * click_taste + np.sqrt(1 - rho**2) * other_taste,
            # logit shift of stay
            "stay_effect": 0.8 * activity + age_stay[age] + tier_stay[city_tier],
            # logit shift of like
            "like_effect": 0.5 * rng.standard_normal(n) + age_like[age],
        }

    def _items(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The item table: author, category, tags (n_items, max_tags), duration, vector,
        appeal, quality, bait."""
        c, n, k = self.config, self.config.n_items, self.config.latent_dim
        author_share = 1 / np.arange(1, c.n_authors + 1) ** 0.8
        author = rng.choice(c.n_authors, n, p=author_share / author_share.sum())
        author_category = rng.integers(c.n_categories, size=c.n_authors)
        category = np.where(
            rng.random(n) < 0.7,
            author_category[author],
            rng.integers(c.n_categories, size=n),
        )

        # Tags: distinct, mostly from the item's category
        # (each tag has a home category), by Gumbel top-k.
        home = rng.permutation(c.n_tags) % c.n_categories  # (n_tags,)
        # (n_categories, n_tags)
        weight = np.where(
            home[None, :] == np.arange(c.n_categories)[:, None], 20.0, 1.0
        )
        keys = np.log(weight[category]) + rng.gumbel(size=(n, c.n_tags))  # (n, n_tags)
        # (n, L), unordered
        top = np.argpartition(-keys, c.max_tags - 1, axis=1)[:, : c.max_tags]
        top = np.take_along_axis(
            top, np.argsort(-np.take_along_axis(keys, top, 1), axis=1), 1
        )
        n_tags = rng.integers(1, c.max_tags + 1, size=n)  # (n,)
        present = np.arange(c.max_tags)[None, :] < n_tags[:, None]  # (n, L)
        tags = np.where(present, top, -1)  # (n, L), -1 pads

        # Item vector: category, tags, author and the item's own part, each of unit
        # variance per dimension.
        category_vec = rng.standard_normal((c.n_categories, k))
        tag_vec = rng.standard_normal((c.n_tags, k))
        author_vec = rng.standard_normal((c.n_authors, k))
        # (n, k)
        tag_sum = (tag_vec[np.where(present, top, 0)] * present[:, :, None]).sum(1)
        vector = (
            np.sqrt(0.3) * category_vec[category]
            + np.sqrt(0.2) * tag_sum / np.sqrt(n_tags)[:, None]
            + np.sqrt(0.2) * author_vec[author]
            + np.sqrt(0.3) * rng.standard_normal((n, k))
        )

        # Appeal and quality: half author, half item; quality agrees with appeal by ρ.
        def item_effect() -> np.ndarray:  # (n,)
            by_author = rng.standard_normal(c.n_authors)[author]
            return ITEM_EFFECT_STD * np.sqrt(0.5) * (by_author + rng.standard_normal(n))

        appeal, other = item_effect(), item_effect()
        rho = c.task_correlation
        bait = GENUINE_STD * rng.standard_normal(n)  # scaled like the genuine part
        # 30 s typical
        spread = c.duration_spread * 0.5  # std of each half of the log duration
        category_log_duration = np.log(30) + spread * rng.standard_normal(
            c.n_categories
        )
        # (n,)
        log_duration = category_log_duration[category] + spread * rng.standard_normal(n)
        # what past views reward
        click_appeal = (appeal + c.clickbait * bait) / np.sqrt(1 + c.clickbait**2)
        return {
            "author": author,
            "category": category,
            "tags": tags,
            "vector": vector,
            "appeal": appeal,
            "quality": rho * appeal + np.sqrt(1 - rho**2) * other,
            "bait": bait,
            "duration": np.exp(log_duration),
            "duration_feature": _zscore(log_duration),
            "popularity": _zscore(
                click_appeal + 0.5 * click_appeal.std() * rng.standard_normal(n)
            ),
        }

    def _latent(self, users: dict, items: dict, u: np.ndarray, i: np.ndarray) -> Latent:
        """The Latent of the impressions of users `u` (N,) and items `i` (N,)."""
        c = self.config
        vector = items["vector"][i]  # (N, k)
        scale = 1 / np.sqrt(c.latent_dim)  # makes each taste term's variance 1
        # keeps the spread of appeal and quality fixed
        shrink = 1 / np.sqrt(1 + c.clickbait**2)
        bait = c.clickbait * items["bait"][i]
        # (N,)
        click_term = scale * np.einsum("nk,nk->n", users["click_taste"][u], vector)
        # (N,)
        quality_term = scale * np.einsum("nk,nk->n", users["quality_taste"][u], vector)
        appeal = shrink * (click_term + items["appeal"][i] + bait)
        quality = shrink * (quality_term + items["quality"][i] - bait)
        return Latent(
            stay=c.stay_bias + 0.5 * appeal + users["stay_effect"][u],
            click=c.click_bias + appeal,
            like=c.like_bias + quality + users["like_effect"][u],
            stay_time=0.3 * appeal,
            watch=c.watch_bias + 0.8 * quality - 0.5 * items["duration_feature"][i],
            duration=items["duration"][i],
        )

    def _impressions(
        self,
        rng: np.random.Generator,
        users: dict,
        items: dict,
        n: int,
        selection: np.random.Generator,
    ) -> Batch:
        """Draw `n` impressions, their truth (noisy and attainable), and labels drawn
        from the noisy truth; u, the unobserved selection, from `selection`."""
        c = self.config
        user_weight, item_weight = _exposure(users, items)
        u = rng.choice(c.n_users, n, p=user_weight)  # (N,)
        i = rng.choice(c.n_items, n, p=item_weight)  # (N,)
        return self._rows(rng, users, items, u, i, selection)

    def _rows(
        self,
        rng: np.random.Generator,
        users: dict,
        items: dict,
        u: np.ndarray,
        i: np.ndarray,
        selection: np.random.Generator,
    ) -> Batch:
        """The impressions of users `u` (N,) and items `i` (N,): features, truth
        (noisy and attainable), and labels drawn from the noisy truth."""
        c, n = self.config, len(u)
        # (5, N): the unexplained part of each logit
        eps = c.noise * rng.standard_normal((5, n))
        if c.unobserved_selection > 0:
            unseen = c.unobserved_selection * selection.standard_normal(n)  # (N,) u
            eps[1] += unseen  # click among stays
            eps[2] += unseen  # like among clicks
        latent = self._latent(users, items, u, i)
        noisy = latent.truth(eps)  # each (N,)

        stay = rng.random(n) < noisy["p_stay"]
        click = stay & (rng.random(n) < noisy["p_click_given_stay"])
        like = click & (rng.random(n) < noisy["p_like_given_click"])
        stay_time_mean = noisy["stay_time_given_stay"]
        play_time_mean = noisy["play_time_given_click"]
        stay_time = np.where(
            stay, self._lognormal(rng, stay_time_mean, c.stay_time_sigma), 0.0
        )
        play_time = np.where(
            click, self._lognormal(rng, play_time_mean, c.play_time_sigma), 0.0
        )

        def f32(x: ArrayLike) -> Tensor:
            return torch.from_numpy(np.asarray(x, dtype=np.float32))

        def ids(x: ArrayLike, dtype: type) -> Tensor:
            return torch.from_numpy(np.asarray(x, dtype=dtype))

        features = {
            "user_id": ids(u, np.int32),
            "item_id": ids(i, np.int32),
            "author_id": ids(items["author"][i], np.int32),
            "category": ids(items["category"][i], np.int16),
            "tags": ids(items["tags"][i], np.int16),  # (N, max_tags)
            "age": ids(users["age"][u], np.int16),
            "gender": ids(users["gender"][u], np.int16),
            "city_tier": ids(users["city_tier"][u], np.int16),
            "duration": f32(items["duration_feature"][i]),
            "popularity": f32(items["popularity"][i]),
            "activity": f32(users["activity_feature"][u]),
        }
        labels = {
            "stay": f32(stay),
            "stay_time": f32(stay_time),
            "click": f32(click),
            "play_time": f32(play_time),
            "like": f32(like),
        }
        attainable = _truth_columns(
            latent.attainable(c.noise, c.unobserved_selection), ATTAINABLE_PREFIX
        )
        truth = {**_truth_columns(noisy), **attainable}
        return Batch(features, labels, truth)

    @staticmethod
    def _lognormal(
        rng: np.random.Generator, mean: np.ndarray, sigma: float
    ) -> np.ndarray:
        """Lognormal draws with the given means: log T ~ N(log mean − σ²/2, σ²), so
        E[T] = mean."""
        return np.exp(
            np.log(mean) - sigma**2 / 2 + sigma * rng.standard_normal(mean.shape)
        )
