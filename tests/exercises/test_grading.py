"""The graded exercises survive nbgrader and students.

One course directory is set up in a temporary folder (the repository's exercises/ is never
written to): the student versions are generated from exercises/source/, then three
"students" submit every assignment: `solution` (the source notebooks, full marks expected),
`blank` (the release as handed out: 0 expected) and `fixture` (tests/exercises/fixtures/:
answers wrong on purpose, including a cell that loops forever and one that does not parse:
the partial score is checked question by question). Autograding runs with a short per-cell
timeout; grades are exported to CSV and feedback HTML is generated.
"""

import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXERCISES = ROOT / "exercises"
FIXTURES = Path(__file__).parent / "fixtures"
BOOK = ROOT / "book" / "exercises"
ASSIGNMENTS = sorted(p.name for p in (EXERCISES / "source").iterdir() if p.is_dir())
STUDENTS = ("solution", "blank", "fixture")
# Per-cell time limit while grading: long enough for `import torch` on a busy machine,
# short enough that the endless loop of the fixture (two cells) costs little.
TIMEOUT = int(os.environ.get("DLCOURSE_GRADING_TIMEOUT", "15"))

# Points per grade cell of the wrong-on-purpose submissions (the comments say what is wrong).
EXPECTED = {
    "ps1_norm_penalties": {
        "test_soft_threshold": 1, "hidden_soft_threshold": 1,        # correct
        "test_l1_proximal_step": 0, "hidden_l1_proximal_step": 0,    # threshold lam, not lr * lam
        "test_max_norm_project": 1, "hidden_max_norm_project": 0,    # divides by 0 on a zero row
        "test_smoothed_targets": 0, "hidden_smoothed_targets": 0,    # PyTorch's eps / k targets
        "test_smoothed_cross_entropy": 1, "hidden_smoothed_cross_entropy": 0,  # overflows
    },
    "ps2_dropout_ensembles": {
        "test_dropout_forward": 0, "hidden_dropout_forward": 0,      # no rescaling by 1 / (1 - p)
        "test_dropout_backward": 1, "hidden_dropout_backward": 1,    # correct
        "test_ensemble_error_variance": 1, "hidden_ensemble_error_variance": 1,  # correct
        "test_simulate_ensemble": 0, "hidden_simulate_ensemble": 0,  # raises (bad covariance)
        "test_early_stopping_epoch": 0, "hidden_early_stopping_epoch": 0,  # loops forever
        "test_train_with_early_stopping": 2, "hidden_train_with_early_stopping": 2,  # correct
    },
    "ps3_optimizers": {
        "test_momentum": 1, "hidden_momentum": 2,                    # correct
        "test_nesterov": 0, "hidden_nesterov": 0,                    # plain momentum
        "test_rmsprop": 1, "hidden_rmsprop": 0,                      # ignores `alpha`
        "test_adam": 0, "hidden_adam": 0,                            # no bias correction
        "test_amsgrad": 0, "hidden_amsgrad": 0,                      # max of v_hat, not of v
    },
    "ps4_init_second_order": {
        "test_glorot_uniform": 0, "hidden_glorot_uniform": 0,        # the notes' 1 / fan_in
        "test_he_normal": 1, "hidden_he_normal": 0,                  # wraps dlcourse (PyTorch)
        "test_layer_second_moments": 1, "hidden_layer_second_moments": 1,  # correct
        "test_hutchinson": 0, "hidden_hutchinson": 0,                # SyntaxError in the answer
        "test_damped_newton": 1, "hidden_damped_newton": 0,          # no ValueError for damping < 0
        "test_diagonal_newton": 0, "hidden_diagonal_newton": 0,      # left blank
    },
}
SOLUTION_BLOCK = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
HIDDEN_BLOCK = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)
TIMINGS = {}


def _nbgrader(course, *args):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    start = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), *args], cwd=course,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stderr[-3000:]}"
    return time.perf_counter() - start, proc.stderr


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    shutil.copy(EXERCISES / "nbgrader_config.py", course)
    shutil.copytree(EXERCISES / "source", course / "source")
    with open(course / "nbgrader_config.py", "a") as f:
        f.write(f"\nc.Execute.timeout = {TIMEOUT}\n")
    start = time.perf_counter()
    TIMINGS["generate_assignment (all)"], _ = _nbgrader(course, "generate_assignment", "--force", "*")
    for a in ASSIGNMENTS:
        for student, nb in (("solution", course / "source" / a / f"{a}.ipynb"),
                            ("blank", course / "release" / a / f"{a}.ipynb"),
                            ("fixture", FIXTURES / f"{a}.ipynb")):
            (course / "submitted" / student / a).mkdir(parents=True)
            shutil.copy(nb, course / "submitted" / student / a / f"{a}.ipynb")
    log = ""
    for a in ASSIGNMENTS:
        TIMINGS[f"autograde {a} (3 submissions)"], err = _nbgrader(
            course, "autograde", a, "--create", "--force")
        log += err
    TIMINGS["generate_feedback (all)"], _ = _nbgrader(course, "generate_feedback", "--force", "*")
    TIMINGS["export"], _ = _nbgrader(course, "export")
    TIMINGS["total"] = time.perf_counter() - start
    print("\nnbgrader timings (s): " + ", ".join(f"{k}: {v:.1f}" for k, v in TIMINGS.items()))
    return course, log


def _scores(course, assignment, student):
    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = gb.find_submission(assignment, student)
        per_cell = {g.name: g.score for nb in sub.notebooks for g in nb.grades}
        return sub.score, gb.find_assignment(assignment).max_score, per_cell


def _nbgrader_meta(cell):
    return cell.metadata.get("nbgrader", {})


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_metadata(assignment):
    nb = nbformat.read(EXERCISES / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    ids = [_nbgrader_meta(c).get("grade_id") for c in nb.cells if _nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), "duplicate grade_id"
    graded = 0
    for cell in nb.cells:
        meta = _nbgrader_meta(cell)
        assert meta.get("schema_version") == 3, f"cell {cell.id}: no nbgrader metadata"
        if meta["solution"]:
            assert SOLUTION_BLOCK.search(cell.source), f"{meta['grade_id']}: no solution markers"
        else:
            assert "BEGIN SOLUTION" not in cell.source, f"{meta['grade_id']}: markers in a non-answer cell"
        if meta["grade"]:
            graded += 1
            assert meta["points"] > 0 and meta["locked"], meta
        else:
            assert "BEGIN HIDDEN TESTS" not in cell.source, f"{meta['grade_id']}: hidden tests in an ungraded cell"
    assert graded >= 8


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_no_solutions_or_hidden_tests(course, assignment):
    course, _ = course
    source = (course / "source" / assignment / f"{assignment}.ipynb")
    release = (course / "release" / assignment / f"{assignment}.ipynb")
    src_cells = nbformat.read(source, as_version=4).cells
    text = "\n".join(c.source for c in nbformat.read(release, as_version=4).cells)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, marker
    # lines of the solutions and hidden tests that appear nowhere else in the source
    blocks = [b for c in src_cells for pat in (SOLUTION_BLOCK, HIDDEN_BLOCK) for b in pat.findall(c.source)]
    visible = "\n".join(HIDDEN_BLOCK.sub("", SOLUTION_BLOCK.sub("", c.source)) for c in src_cells)
    distinctive = {line.strip() for b in blocks for line in b.splitlines()
                   if len(line.strip()) >= 20 and line.strip() not in visible}
    assert len(distinctive) >= 30, "too few distinctive lines: the check would be vacuous"
    leaked = sorted(line for line in distinctive if line in text)
    assert not leaked, f"solution or hidden-test lines in the release: {leaked[:5]}"
    answers = [c for c in nbformat.read(release, as_version=4).cells if _nbgrader_meta(c).get("solution")]
    assert answers and all("raise NotImplementedError()" in c.source for c in answers)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_book_copy_is_the_release(course, assignment):
    course, _ = course
    release = nbformat.read(course / "release" / assignment / f"{assignment}.ipynb", as_version=4)
    book = nbformat.read(BOOK / f"{assignment}.ipynb", as_version=4)
    assert [(c.cell_type, c.source) for c in book.cells] == \
           [(c.cell_type, c.source) for c in release.cells], \
        f"book/exercises/{assignment}.ipynb is out of date: run `make exercises`"
    assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_gets_full_marks(course, assignment):
    course, _ = course
    nb = nbformat.read(EXERCISES / "source" / assignment / f"{assignment}.ipynb", as_version=4)
    points = sum(_nbgrader_meta(c)["points"] for c in nb.cells if _nbgrader_meta(c).get("grade"))
    score, max_score, per_cell = _scores(course, assignment, "solution")
    assert max_score == points
    assert score == max_score, {k: v for k, v in per_cell.items()}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_blank_release_gets_zero(course, assignment):
    course, _ = course
    score, max_score, per_cell = _scores(course, assignment, "blank")
    assert max_score > 0 and score == 0, per_cell
    # every answer was graded (raised NotImplementedError), none was skipped
    assert set(per_cell) == set(EXPECTED[assignment])


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_wrong_submission_gets_the_expected_partial_score(course, assignment):
    course, _ = course
    score, max_score, per_cell = _scores(course, assignment, "fixture")
    assert per_cell == EXPECTED[assignment]
    assert 0 < score == sum(EXPECTED[assignment].values()) < max_score


def test_endless_loop_is_interrupted_and_later_cells_run(course):
    course, log = course
    nb = nbformat.read(course / "autograded" / "fixture" / "ps2_dropout_ensembles"
                       / "ps2_dropout_ensembles.ipynb", as_version=4)
    by_id = {_nbgrader_meta(c).get("grade_id"): c for c in nb.cells}
    errors = [o.ename for o in by_id["test_early_stopping_epoch"].outputs if o.output_type == "error"]
    assert "CellTimeoutError" in errors, errors
    later = by_id["test_train_with_early_stopping"].outputs
    assert not [o for o in later if o.output_type == "error"], "the cells after the loop must run"
    assert "Interrupting kernel" in log


def test_grades_are_exported_to_csv(course):
    course, _ = course
    with open(course / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    got = {(r["assignment"], r["student_id"]): float(r["score"]) for r in rows}
    assert set(got) == {(a, s) for a in ASSIGNMENTS for s in STUDENTS}
    for a in ASSIGNMENTS:
        assert got[(a, "solution")] == _scores(course, a, "solution")[1]
        assert got[(a, "blank")] == 0
        assert got[(a, "fixture")] == sum(EXPECTED[a].values())


def test_feedback_html_for_every_submission(course):
    course, _ = course
    for a in ASSIGNMENTS:
        for s in STUDENTS:
            html = course / "feedback" / s / a / f"{a}.html"
            assert html.exists(), html
            text = html.read_text()
            assert "Score" in text or "score" in text
    loop = (course / "feedback" / "fixture" / "ps2_dropout_ensembles" / "ps2_dropout_ensembles.html")
    assert "CellTimeoutError" in loop.read_text()


def test_nbgrader_outputs_are_ignored_by_git():
    ignored = (ROOT / ".gitignore").read_text().split()
    for entry in ("exercises/gradebook.db", "exercises/release/", "exercises/submitted/",
                  "exercises/autograded/", "exercises/feedback/", "exercises/grades.csv"):
        assert entry in ignored, entry
