"""Video swap protocols shaped as FaceForensics++'s: evenly spaced target frames, a source frame per source video,
retrieval among the sampled frames of every real video."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fsbench.errors import UsageError
from fsbench.metrics.definitions import TEMPORAL_METRICS
from fsbench.protocols.base import Item, Pair, Protocol, ProtocolData
from fsbench.protocols.stills import STILLS_METRICS

VIDEO_METRICS = STILLS_METRICS
FRAMES_PER_VIDEO = 10  # FaceShifter: "evenly sampled 10 frames from each video clip"
SOURCE_FRAME = FRAMES_PER_VIDEO // 2  # the source identity comes from the middle sampled frame of the source video


@dataclass(frozen=True)
class Video:
    id: str
    identity: str
    asset: str | None = None
    path: str | None = None
    start: int = 0  # clip [start, end) within the file; end None = to the last frame
    end: int | None = None

    def file(self) -> Path:
        return Item(self.id, self.identity, asset=self.asset, path=self.path).file()


@dataclass(frozen=True)
class FrameChoice:
    """Which target frames a video protocol swaps: ``count`` evenly spaced over the clip (``frames=10``, the
    default), or ``count`` consecutive ones from the middle of the clip (``frames=consecutive:16``), whose swaps of
    one source then form a clip, scored for temporal consistency. The source frame and the gallery stay
    the evenly spaced ones of the default either way."""

    count: int = FRAMES_PER_VIDEO
    consecutive: bool = False

    @staticmethod
    def parse(text: str | int) -> "FrameChoice":
        value = str(text)
        consecutive = value.startswith("consecutive:")
        count = value.removeprefix("consecutive:")
        if not count.isdigit() or int(count) < (2 if consecutive else 1):
            raise UsageError(f"--protocol-option frames={value}: expected a number of evenly spaced target frames "
                             f"(frames=10) or consecutive:N with N >= 2 (frames=consecutive:16)")
        return FrameChoice(int(count), consecutive)

    def variant(self) -> dict[str, str]:
        """What the variant records beyond the default's keys; nothing for evenly spaced frames. Two results
        compare only when their variants are equal, so this wording is fixed for the protocol's version."""
        if not self.consecutive:
            return {}
        return {"target_frames": f"{self.count} consecutive frames from the middle of each target clip",
                "sequences": "the swaps of one source onto the consecutive frames of one target clip, in frame "
                             "order; temporal metrics per sequence"}


def sample_frames(video: Video, frames: int, consecutive: bool = False) -> list[Item]:
    """``frames`` evenly spaced frames of the clip (or, ``consecutive``, that many consecutive frames from its
    middle) as items; raises FaceError if the video cannot be read."""
    from fsbench.faces import io

    end = video.end if video.end is not None else io.video_frame_count(video.file())
    length = end - video.start
    first = max(0, (length - frames) // 2)
    offsets = range(first, min(length, first + frames)) if consecutive else io.evenly_spaced(length, frames)
    return [Item(id=f"{video.id}#{video.start + i}", identity=video.identity, asset=video.asset, path=video.path,
                 frame=video.start + i) for i in offsets]


def _sample_videos(videos: list[Video], frames: FrameChoice) -> tuple[dict, dict, dict[str, str]]:
    """Per readable video its evenly spaced frames (source frame and gallery) and its target frames; the videos
    that could not be read, with the reason."""
    from fsbench.faces.errors import FaceError

    sampled: dict[str, list[Item]] = {}
    targets: dict[str, list[Item]] = {}
    failures: dict[str, str] = {}
    for video in videos:
        try:
            sampled[video.id] = sample_frames(video, FRAMES_PER_VIDEO if frames.consecutive else frames.count)
            targets[video.id] = (sample_frames(video, frames.count, consecutive=True) if frames.consecutive
                                 else sampled[video.id])
        except FaceError as err:
            failures[video.id] = f"{type(err).__name__}: {err}"
    return sampled, targets, failures


def video_protocol_data(videos: list[Video], swap_pairs: list[tuple[str, str]], frames: FrameChoice,
                        dataset: dict, variant: dict) -> ProtocolData:
    """Pairs are (target video id, source video id); each target frame is swapped with the source frame. With
    consecutive target frames, the pairs of each (target, source) form a clip."""
    sampled, targets, failures = _sample_videos(videos, frames)
    pairs, clips = [], []
    for target, source in swap_pairs:
        missing = [v for v in (target, source) if v not in sampled]
        if missing:
            failures[f"{target}_{source}"] = "unreadable or missing video: " + ", ".join(missing)
            continue
        src_item = sampled[source][min(SOURCE_FRAME, len(sampled[source]) - 1)]
        clip = [Pair(src_item, tgt_item) for tgt_item in targets[target]]
        pairs.extend(clip)
        if frames.consecutive:
            clips.append(tuple(p.id for p in clip))
    gallery = [item for items in sampled.values() for item in items]
    n_gallery = FRAMES_PER_VIDEO if frames.consecutive else frames.count
    variant = {**variant, "frames_per_target": frames.count,
               "source_frame": f"sampled frame {SOURCE_FRAME} of {n_gallery} of the source video",
               "gallery": f"{n_gallery} sampled frames of every readable real video", "retrieval_label": "identity",
               **frames.variant()}
    return ProtocolData(pairs, gallery, dataset, variant, failures, clips=clips)


class VideoProtocol(Protocol):
    """A protocol over video clips; its ``frames`` option chooses the target frames (:class:`FrameChoice`)."""

    metrics = VIDEO_METRICS
    frames: FrameChoice

    def choose_frames(self, frames: str | int) -> None:
        """With consecutive target frames the protocol gives clips (the input ``frames``) and reports the temporal
        metrics, and any other package's metric that reads frames, in a results file of its own; the default's
        metrics, inputs, version and file name are those of evenly spaced frames."""
        self.frames = FrameChoice.parse(frames)
        if self.frames.consecutive:
            self.metrics = VIDEO_METRICS + TEMPORAL_METRICS
            self.inputs = Protocol.inputs | {"frames"}
            self.variant_tag = f"consecutive{self.frames.count}"


class FFPP(VideoProtocol):
    """FaceForensics++ face-swap protocol on the user's copy (``--data-root``)."""

    name = "ffpp"
    version = 1
    description = ("FaceForensics++: the 1000 manipulated-video pairs <target>_<source> (or a splits json), "
                   "10 evenly spaced target frames, gallery = 10 frames of every original video")
    needs_data_root = True

    def __init__(self, compression: str = "c23", splits: str | None = None, split: str = "test",
                 frames: str | int = FRAMES_PER_VIDEO) -> None:
        self.compression, self.splits, self.split = compression, splits, split
        self.choose_frames(frames)

    def build(self, data_root: Path | None, seed: int) -> ProtocolData:
        from fsbench.data.ffpp import FFPPDataset

        data = FFPPDataset(data_root, self.compression, self.splits, self.split)
        ids = sorted(set(data.all_videos()) | {v for pair in data.pairs for v in pair})
        videos = [Video(id=v, identity=v, path=str(data.video(v))) for v in ids]
        return video_protocol_data(videos, data.pairs, self.frames, data.describe(),
                                   {"compression": self.compression, "retrieval": "correct if the nearest "
                                    "gallery frame comes from the source video"})


class MiniVideo(VideoProtocol):
    """FF++-shaped protocol on the embedded test videos: each clip is a video, identities cross videos."""

    name = "mini-video"
    version = 1
    description = ("embedded test videos cut into clips: every clip as target, the first clip of every other test "
                   "identity as source, 10 evenly spaced frames per clip, retrieval across videos by identity")

    def __init__(self, frames: str | int = FRAMES_PER_VIDEO) -> None:
        self.choose_frames(frames)

    def build(self, data_root: Path | None, seed: int) -> ProtocolData:
        from fsbench.data import mini

        manifest = mini.load_manifest()
        videos = [Video(id=f"{item.id}@{clip.start}-{clip.end}", identity=item.identity, asset=item.asset,
                        start=clip.start, end=clip.end)
                  for item in manifest.items(split="test", kind="video") for clip in item.clips]
        first_clip: dict[str, str] = {}
        for video in videos:
            first_clip.setdefault(video.identity, video.id)
        swap_pairs = [(target.id, source) for target in videos for identity, source in first_clip.items()
                      if identity != target.identity]
        dataset = {"name": "mini", "manifest_version": manifest.version, "manifest_sha256": mini.manifest_sha256(),
                   "split": "test"}
        return video_protocol_data(videos, swap_pairs, self.frames, dataset,
                                   {"pairs": "every test clip x first clip of every other test identity"})
