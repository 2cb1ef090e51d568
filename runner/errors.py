"""The one exception tree of bria-run.

Every error carries structured fields and builds its message from them, so tests
assert on fields and on the exact text users see. The CLI maps the tree to exit
codes: ``PipelineInvalid`` and ``UsageError`` exit 2, every other ``BriaRunError``
exits 1, ``Interrupted`` exits 130.

    BriaRunError
    ├── UsageError                 bad command-line input (exit 2)
    ├── PipelineInvalid            the pipeline file or a file it names is invalid (exit 2)
    ├── ConfigError                missing token, unusable state path, ...
    ├── StateError                 state belongs to another API / cannot be read
    │   ├── StateUnusable          empty, truncated, damaged or not a bria-run state (exit 2)
    │   ├── StateTooNew            written by a newer bria-run (exit 2)
    │   └── LockHeld               another live runner holds the state
    ├── ApiError                   Bria answered with an error status
    │   ├── BadRequest 400, Unauthorized 401, Forbidden 403, NotFound 404,
    │   ├── Conflict 409, PreconditionFailed 412, PayloadTooLarge 413,
    │   ├── UnsupportedMediaType 415, Unprocessable 422, RateLimited 429,
    │   ├── UrlDownloadFailed 460, ServerError 5xx
    │   ├── NetworkError           no answer at all (connect/read failure, timeout)
    │   └── AnswerTooLarge         (a ServerError) an answer over the documented cap
    ├── JobError                   an async generation job did not produce a result
    │   ├── JobFailed              status ERROR
    │   ├── JobUnknown             status UNKNOWN (a server fault)
    │   ├── JobLost                404 NOT_FOUND for a recorded request id
    │   └── JobTimeout             still running (or its result link not ready) after a time limit
    ├── ResultExpired              a result link stopped serving before download
    ├── ResultRefused              a result link to an address bria-run never fetches
    ├── ResultInvalid              a download too large, too slow, or not an image
    ├── TrainingFailed             the model ended Failed or Stopped
    ├── LegacyRetired              a legacy (light/max) route or field is no longer served
    ├── CaptionSealed              a caption change reached a dataset that is already completed
    ├── StaleModel                 training inputs changed; needs --retrain or --keep-model
    ├── DatasetIncomplete          Bria's dataset lacks declared images: no training on part
    ├── ResourceGone               Bria no longer knows a recorded project, dataset or model
    ├── DiskFull                   no space left writing an output or the state (stops the run)
    ├── StepCrashed                an unexpected exception in a step (stops the run)
    ├── RunFailed                  some steps failed; the rest finished
    └── Interrupted                Ctrl-C / SIGTERM (exit 130)

The ``ApiError``, ``JobError`` and ``Result*`` branches live in ``runner.bria.errors``, beside
the client that raises them; the rest is here. The API token never appears in any message:
``ApiError`` only keeps method, path, status and Bria's message, and ``redact`` scrubs a known
token from any text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130


class BriaRunError(Exception):
    """Base of every error bria-run reports to a user."""

    exit_code = EXIT_FAILURE
    hint: str | None = None
    abandoned_workers = 0  # set by the engine: workers still in flight when the run gave up
    stops_run = False  # True: even in a step whose failure is its own (a scene), stop the run

    def __str__(self) -> str:
        return self.message()

    def message(self) -> str:
        return self.args[0] if self.args else type(self).__name__


class UsageError(BriaRunError):
    exit_code = EXIT_INVALID


class ConfigError(BriaRunError):
    """Something outside the pipeline file is missing or wrong (token, state path)."""


@dataclass(frozen=True)
class Problem:
    """One problem in a pipeline file, at a position: ``file:line:col: path: message``."""

    file: str
    line: int
    col: int
    path: str
    message: str
    hint: str | None = None
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}"
        subject = f"{self.path}: " if self.path else ""
        text = f"{where}: {subject}{self.message}"
        if self.severity == "warning":
            text = f"{where}: warning: {subject}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
            "severity": self.severity,
        }


class PipelineInvalid(BriaRunError):
    """The pipeline file (or a file it names) has errors; nothing remote was done."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__()
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.col, p.path))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def message(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class StateError(BriaRunError):
    """The state database cannot be used as it is."""


class StateUnusable(StateError):
    """A state file that exists but cannot be used as a state: it is never overwritten."""

    exit_code = EXIT_INVALID

    def __init__(self, location: str, why: str) -> None:
        super().__init__()
        self.location, self.why = location, why

    def message(self) -> str:
        return (
            f"the state {self.location} {self.why}; bria-run leaves it untouched. Move it aside "
            f"(`mv {self.location} {self.location}.damaged`) and run again: the new state finds "
            f"the project, dataset and model already at Bria by name, so nothing is paid twice."
        )


class StateTooNew(StateError):
    """A state written by a newer bria-run (a higher state schema): never downgraded."""

    exit_code = EXIT_INVALID

    def __init__(self, location: str, schema: int, writer: str | None,
                 reads: int, version: str) -> None:
        super().__init__()
        self.location, self.schema, self.writer = location, schema, writer
        self.reads, self.version = reads, version

    def message(self) -> str:
        by = f"bria-run {self.writer}" if self.writer else "a newer bria-run"
        return (
            f"the state {self.location} was written by {by} (state schema {self.schema}); this "
            f"is bria-run {self.version}, which reads state schemas up to {self.reads}. Upgrade "
            f"bria-run to use it; the state is left untouched."
        )


class StateMissing(StateError):
    """A read-only command found no state: nothing has run for this pipeline yet."""


class LockHeld(StateError):
    def __init__(self, pid: int, host: str, command: str, since: str, state: str,
                 expires_in: float | None = None) -> None:
        super().__init__()
        self.pid, self.host, self.command, self.since, self.state = pid, host, command, since, state
        self.expires_in = expires_in  # seconds until the holder's lease lapses, if it is silent
        self.unlock = "bria-run unlock PIPELINE"  # the app names the file, to paste as it is

    def message(self) -> str:
        lapse = "" if self.expires_in is None else (
            f"; its lease lapses in {self.expires_in:.0f}s unless it renews it, and "
            f"--wait-lock SECONDS waits for that")
        return (
            f"{self.state} is in use by another bria-run (pid {self.pid} on {self.host}, "
            f"running `{self.command}` since {self.since}{lapse}). Wait for it to finish, or, "
            f"if you are sure it is gone, run: {self.unlock}"
        )


class LeaseLost(StateError):
    """Fencing: another runner took this runner's lease over; nothing more is written."""

    stops_run = True  # every later write would be refused the same way

    def __init__(self, state: str, holder: str) -> None:
        super().__init__()
        self.state, self.holder = state, holder

    def message(self) -> str:
        return (
            f"this runner's lease on {self.state} was taken over ({self.holder}), so it "
            f"stopped before writing anything more; the other runner continues the pipeline. "
            f"A lease lapses when its runner cannot renew it in time (a paused or cut-off "
            f"machine): give it a longer BRIA_RUN_LEASE if that was a pause."
        )


class TrainingFailed(BriaRunError):
    def __init__(self, model_id: int, status: str, reasons: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.model_id, self.status, self.reasons = model_id, status, reasons

    def message(self) -> str:
        why = f": {'; '.join(self.reasons)}" if self.reasons else ""
        return (
            f"training failed for model {self.model_id} ({self.status}){why}. Run again with "
            f"--retrain to start a new training (about 50-100 credits)."
        )


LEGACY_END = "2026-07-01"


class LegacyRetired(BriaRunError):
    """A legacy route answered like a retired endpoint (404/410 or "not supported")."""

    stops_run = True  # every later legacy request would be refused the same way

    def __init__(self, method: str, path: str, status: int | None, bria_message: str) -> None:
        super().__init__()
        self.method, self.path, self.status, self.bria_message = method, path, status, bria_message

    def message(self) -> str:
        said = f": {self.bria_message}" if self.bria_message else ""
        return (
            f"{self.method} {self.path}: HTTP {self.status}{said}. Bria no longer serves this "
            f"legacy (light/max) route: legacy model support ended on {LEGACY_END}. Train the "
            f"character on fibo instead: set `training.version: fibo` and run again (a new "
            f"training, about 50-100 credits). Every finished step and downloaded image is kept."
        )


class StaleModel(BriaRunError):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__()
        self.reasons = reasons

    def message(self) -> str:
        why = "; ".join(self.reasons)
        return (
            f"the trained model is stale: {why}. Nothing was spent. Run again with --retrain "
            f"to train a new model (about 50-100 credits), or --keep-model to go on with the old one."
        )


class CaptionSealed(BriaRunError):
    """Bria refuses caption changes on a completed dataset (409)."""

    def __init__(self, dataset_id: int, image_name: str) -> None:
        super().__init__()
        self.dataset_id, self.image_name = dataset_id, image_name

    def message(self) -> str:
        return (
            f"caption of {self.image_name}: dataset {self.dataset_id} is already completed, and "
            f"Bria refuses caption changes on a completed dataset. Run again with --retrain to "
            f"build a new dataset with the new captions and train on it (about 50-100 credits)."
        )


class DatasetIncomplete(BriaRunError):
    """Bria lists fewer images in the dataset than the plan uploaded: training on it would
    pay for a model of part of the character."""

    def __init__(self, dataset_id: int, missing: list[str], declared: int, action: str) -> None:
        super().__init__()
        self.dataset_id, self.missing, self.declared, self.action = (
            dataset_id, missing, declared, action)

    def message(self) -> str:
        shown = ", ".join(self.missing[:5]) + (", ..." if len(self.missing) > 5 else "")
        return (
            f"dataset {self.dataset_id} at Bria lacks {len(self.missing)} of the {self.declared} "
            f"declared training image(s) ({shown}): refusing to {self.action} on part of the "
            f"images. Nothing was spent. Run again with --retrain to upload every image into "
            f"a new dataset."
        )


class ResourceGone(BriaRunError):
    """A project, dataset or model the state (or the file) names is gone at Bria: deleted, or
    the account's resources were reset. Every later step needs it, so the run stops."""

    stops_run = True

    def __init__(self, kind: str, remote_id: int, *, from_file: bool = False) -> None:
        super().__init__()
        self.kind, self.remote_id, self.from_file = kind, remote_id, from_file

    def message(self) -> str:
        text = f"{self.kind} {self.remote_id} no longer exists at Bria"
        if self.from_file:
            return (f"{text} (training.model_id in the file). Set training.model_id to a model "
                    f"your account has, or remove it to train one.")
        return (
            f"{text} (deleted, or the account's resources were reset). Run again with --retrain "
            f"to make a new {self.kind} and everything after it (a new training: about 50-100 "
            f"credits); the images made so far are kept."
        )


class DiskFull(BriaRunError):
    """No space left on a device while writing ``path`` (an output file or the state)."""

    stops_run = True

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def message(self) -> str:
        return f"disk full writing {shown_path(self.path)}; nothing lost: free space and run again"


class StepCrashed(BriaRunError):
    """An exception bria-run did not expect, in a step: the run stops at once (no new work),
    and says which step and why; the traceback goes to ``log`` (or the terminal)."""

    stops_run = True

    def __init__(self, step: str, cause: BaseException, log: str | None = None) -> None:
        super().__init__()
        self.step, self.cause, self.log = step, cause, log

    @property
    def cause_text(self) -> str:
        detail = str(self.cause)
        return f"{type(self.cause).__name__}: {detail}" if detail else type(self.cause).__name__

    def message(self) -> str:
        where = f"traceback in {shown_path(self.log)}" if self.log else "traceback not kept"
        return (
            f"{self.step} stopped the run: {self.cause_text} (unexpected; {where}, --debug "
            f"prints it). No new work was started and everything finished is recorded: "
            f"running again is safe."
        )


class RunFailed(BriaRunError):
    def __init__(self, failures: dict[str, str], resume: str = "") -> None:
        super().__init__()
        self.failures, self.resume = failures, resume

    def message(self) -> str:
        lines = [f"{len(self.failures)} step(s) failed:"]
        lines += [f"  {key}: {why}" for key, why in sorted(self.failures.items())]
        if self.resume:
            lines.append(f"Fix the cause and run `{self.resume}` again; finished work is kept.")
        return "\n".join(lines)


class Interrupted(BriaRunError):
    exit_code = EXIT_INTERRUPTED

    def __init__(self, resume: str = "") -> None:
        super().__init__()
        self.resume = resume

    def message(self) -> str:
        text = "interrupted; everything finished so far is recorded."
        return f"{text} Resume with: {self.resume}" if self.resume else text


def shown_path(path: str) -> str:
    """A path as a user typed it: relative to the current folder when it is below it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if relative.startswith("..") else relative


def redact(text: str, secret: str | None) -> str:
    """Replace every occurrence of ``secret`` in ``text``; tokens must never reach output."""
    if secret and len(secret) >= 4:
        return text.replace(secret, "***")
    return text
