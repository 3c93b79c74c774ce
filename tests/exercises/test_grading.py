"""The graded exercises survive nbgrader and students.

One course directory is set up in a temporary folder (the repository's
exercises/ is never written to): the student versions are generated from
exercises/source/, then three "students" submit every assignment: `solution`
(the source notebooks, full marks expected), `blank` (the release as handed
out: 0 expected) and `fixture` (tests/exercises/fixtures/: answers wrong on
purpose, including a cell that loops forever, one that does not parse,
answers that reach torch or dlcourse by one route or another and a
"simulation" that returns the formula plus noise: the partial score is
checked question by question). Autograding runs with a short per-cell
timeout; grades are exported to CSV and feedback HTML is generated.
"""

import csv
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXERCISES = ROOT / "exercises"
FIXTURES = Path(__file__).parent / "fixtures"
BOOK = ROOT / "book" / "exercises"
ASSIGNMENTS = sorted(
    p.name for p in (EXERCISES / "source").iterdir() if p.is_dir()
)
STUDENTS = ("solution", "blank", "fixture")
# Per-cell time limit while grading: long enough for `import torch` on a busy
# machine, short enough that the endless loop of the fixture (two cells)
# costs little.
TIMEOUT = int(os.environ.get("DLCOURSE_GRADING_TIMEOUT", "15"))

# Points per grade cell of the wrong-on-purpose submissions (the comments say
# what is wrong).
EXPECTED = {
    "ps1_norm_penalties": {
        # correct
        "test_soft_threshold": 1,
        "hidden_soft_threshold": 1,
        # right values, from torch's softshrink reached by __import__
        "test_l1_proximal_step": 0,
        "hidden_l1_proximal_step": 0,
        # divides by 0 on a zero row
        "test_max_norm_project": 1,
        "hidden_max_norm_project": 0,
        # right values, from torch reached by importlib.import_module
        "test_smoothed_targets": 0,
        "hidden_smoothed_targets": 0,
        # overflows
        "test_smoothed_cross_entropy": 1,
        "hidden_smoothed_cross_entropy": 0,
    },
    "ps2_dropout_ensembles": {
        # right values, from torch held in a closure
        "test_dropout_forward": 0,
        "hidden_dropout_forward": 0,
        # correct
        "test_dropout_backward": 1,
        "hidden_dropout_backward": 1,
        # correct
        "test_ensemble_error_variance": 1,
        "hidden_ensemble_error_variance": 1,
        # no simulation: the formula plus noise of the right size
        "test_simulate_ensemble": 0,
        "hidden_simulate_ensemble": 0,
        # loops forever
        "test_early_stopping_epoch": 0,
        "hidden_early_stopping_epoch": 0,
        # correct
        "test_train_with_early_stopping": 2,
        "hidden_train_with_early_stopping": 2,
    },
    "ps3_optimizers": {
        # correct
        "test_momentum": 1,
        "hidden_momentum": 2,
        # right values, from torch fetched in sys.modules
        "test_nesterov": 0,
        "hidden_nesterov": 0,
        # ignores `alpha`
        "test_rmsprop": 1,
        "hidden_rmsprop": 0,
        # right values, with torch.sqrt bound to a default argument
        "test_adam": 0,
        "hidden_adam": 0,
        # right values, with torch imported at the top of the answer cell
        "test_amsgrad": 0,
        "hidden_amsgrad": 0,
    },
    "ps4_init_second_order": {
        # the notes' 1 / fan_in
        "test_glorot_uniform": 0,
        "hidden_glorot_uniform": 0,
        # wraps dlcourse's he_normal_ (imports torch and dlcourse)
        "test_he_normal": 0,
        "hidden_he_normal": 0,
        # correct
        "test_layer_second_moments": 1,
        "hidden_layer_second_moments": 1,
        # SyntaxError in the answer
        "test_hutchinson": 0,
        "hidden_hutchinson": 0,
        # no ValueError for damping < 0
        "test_damped_newton": 1,
        "hidden_damped_newton": 0,
        # left blank
        "test_diagonal_newton": 0,
        "hidden_diagonal_newton": 0,
    },
    "ps5_robustness": {
        # correct
        "test_input_gradient": 1,
        "hidden_input_gradient": 1,
        # steps along the gradient, not its sign
        "test_fgsm": 0,
        "hidden_fgsm": 0,
        # no ValueError for eps < 0
        "test_pgd_step": 1,
        "hidden_pgd_step": 0,
        # projects around the previous iterate, not the clean input
        "test_pgd_attack": 0,
        "hidden_pgd_attack": 0,
        # no ValueError for k larger than the number of atoms
        "test_omp": 2,
        "hidden_omp": 0,
        # crashes: itertools not imported (NameError)
        "test_dropout_masks": 0,
        "hidden_dropout_masks": 0,
        # right values, from dlcourse's mask_ensemble imported at the top of
        # the answer cell
        "test_dropout_ensemble": 0,
        "hidden_dropout_ensemble": 0,
    },
    "ps6_batchnorm_adaptive": {
        # correct
        "test_batchnorm_forward": 1,
        "hidden_batchnorm_forward": 1,
        # no ValueError for momentum outside [0, 1]
        "test_running_stats": 1,
        "hidden_running_stats": 0,
        # dx from the direct path only: the paths through the batch mean and
        # variance are forgotten
        "test_batchnorm_backward": 0,
        "hidden_batchnorm_backward": 0,
        # right values, from torch imported in the function
        "test_adagrad": 0,
        "hidden_adagrad": 0,
        # crashes: math not imported (NameError)
        "test_adadelta": 0,
        "hidden_adadelta": 0,
        # soft-thresholds at alpha instead of n * alpha
        "test_lasso_cd": 0,
        "hidden_lasso_cd": 0,
    },
}
# The questions whose fixture answer uses torch or dlcourse (otherwise
# right): both their test cells must fail on the NumPy-only check itself.
NOT_NUMPY = {
    "ps1_norm_penalties": ("l1_proximal_step", "smoothed_targets"),
    "ps2_dropout_ensembles": ("dropout_forward",),
    "ps3_optimizers": ("nesterov", "adam", "amsgrad"),
    "ps4_init_second_order": ("he_normal",),
    "ps5_robustness": ("dropout_ensemble",),
    "ps6_batchnorm_adaptive": ("adagrad",),
}
NOT_NUMPY_MESSAGE = "The answers must use NumPy only"
SOLUTION_BLOCK = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
HIDDEN_BLOCK = re.compile(
    r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S
)
TIMINGS = {}


def _nbgrader(course, *args):
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    start = time.perf_counter()
    proc = subprocess.run(
        [str(bin_dir / "nbgrader"), *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (
        f"nbgrader {' '.join(args)} failed:\n{proc.stderr[-3000:]}"
    )
    return time.perf_counter() - start, proc.stderr


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    shutil.copy(EXERCISES / "nbgrader_config.py", course)
    shutil.copytree(EXERCISES / "source", course / "source")
    with open(course / "nbgrader_config.py", "a") as f:
        f.write(f"\nc.Execute.timeout = {TIMEOUT}\n")
    start = time.perf_counter()
    TIMINGS["generate_assignment (all)"], _ = _nbgrader(
        course, "generate_assignment", "--force", "*"
    )
    for a in ASSIGNMENTS:
        for student, nb in (
            ("solution", course / "source" / a / f"{a}.ipynb"),
            ("blank", course / "release" / a / f"{a}.ipynb"),
            ("fixture", FIXTURES / f"{a}.ipynb"),
        ):
            (course / "submitted" / student / a).mkdir(parents=True)
            shutil.copy(nb, course / "submitted" / student / a / f"{a}.ipynb")
    log = ""
    for a in ASSIGNMENTS:
        TIMINGS[f"autograde {a} (3 submissions)"], err = _nbgrader(
            course, "autograde", a, "--create", "--force"
        )
        log += err
    TIMINGS["generate_feedback (all)"], _ = _nbgrader(
        course, "generate_feedback", "--force", "*"
    )
    TIMINGS["export"], _ = _nbgrader(course, "export")
    TIMINGS["total"] = time.perf_counter() - start
    print(
        "\nnbgrader timings (s): "
        + ", ".join(f"{k}: {v:.1f}" for k, v in TIMINGS.items())
    )
    return course, log


def _scores(course, assignment, student):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = gb.find_submission(assignment, student)
        per_cell = {g.name: g.score for nb in sub.notebooks for g in nb.grades}
        return sub.score, gb.find_assignment(assignment).max_score, per_cell


def _nbgrader_meta(cell):
    return cell.metadata.get("nbgrader", {})


def _source(assignment):
    return nbformat.read(
        EXERCISES / "source" / assignment / f"{assignment}.ipynb", as_version=4
    )


def _graded_cells(course, student, assignment):
    nb = nbformat.read(
        course / "autograded" / student / assignment / f"{assignment}.ipynb",
        as_version=4,
    )
    return {_nbgrader_meta(c).get("grade_id"): c for c in nb.cells}


def _errors(cell):
    return [
        (o.ename, o.evalue)
        for o in cell.get("outputs", [])
        if o.output_type == "error"
    ]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_metadata(assignment):
    nb = _source(assignment)
    ids = [
        _nbgrader_meta(c).get("grade_id") for c in nb.cells if _nbgrader_meta(c)
    ]
    assert len(ids) == len(set(ids)), "duplicate grade_id"
    graded = 0
    for cell in nb.cells:
        meta = _nbgrader_meta(cell)
        assert meta.get("schema_version") == 3, (
            f"cell {cell.id}: no nbgrader metadata"
        )
        if meta["solution"]:
            assert SOLUTION_BLOCK.search(cell.source), (
                f"{meta['grade_id']}: no solution markers"
            )
        else:
            assert "BEGIN SOLUTION" not in cell.source, (
                f"{meta['grade_id']}: markers in a non-answer cell"
            )
        if meta["grade"]:
            graded += 1
            assert meta["points"] > 0 and meta["locked"], meta
        else:
            assert "BEGIN HIDDEN TESTS" not in cell.source, (
                f"{meta['grade_id']}: hidden tests in an ungraded cell"
            )
    assert graded >= 8


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_code_fits_the_page(assignment):
    # the project's one line length (ruff's), which fits the rendered column
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    width = pyproject["tool"]["ruff"]["line-length"]
    nb = _source(assignment)
    long = [
        (_nbgrader_meta(c)["grade_id"], line)
        for c in nb.cells
        if c.cell_type == "code"
        for line in c.source.splitlines()
        if len(line) > width
    ]
    assert not long, long[:5]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_test_runs_under_the_numpy_only_check(assignment):
    """Each graded cell runs its tests inside `with numpy_only(...)`, the
    visible part with the setup's helper, the hidden part with a copy of its
    own (an answer cell could have replaced the setup's)."""
    nb = _source(assignment)
    by_id = {_nbgrader_meta(c)["grade_id"]: c for c in nb.cells}
    helper = by_id["numpy_only"]
    assert _nbgrader_meta(helper)["locked"]
    guard = helper.source[helper.source.index("import re\n") :]
    assert "class numpy_only" in guard
    for grade_id, cell in by_id.items():
        if not _nbgrader_meta(cell)["grade"]:
            continue
        hidden = HIDDEN_BLOCK.search(cell.source)
        visible = HIDDEN_BLOCK.sub("", cell.source)
        if hidden:
            assert guard in hidden.group(1), f"{grade_id}: stale helper copy"
            assert "\nwith numpy_only(" in hidden.group(1), grade_id
        else:
            assert re.search(r"^with numpy_only\(", visible, re.M), grade_id


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_no_solutions_or_hidden_tests(course, assignment):
    course, _ = course
    source = course / "source" / assignment / f"{assignment}.ipynb"
    release = course / "release" / assignment / f"{assignment}.ipynb"
    src_cells = nbformat.read(source, as_version=4).cells
    text = "\n".join(
        c.source for c in nbformat.read(release, as_version=4).cells
    )
    for marker in (
        "BEGIN SOLUTION",
        "END SOLUTION",
        "BEGIN HIDDEN TESTS",
        "END HIDDEN TESTS",
    ):
        assert marker not in text, marker
    # lines of the solutions and hidden tests that appear nowhere else in the
    # source
    blocks = [
        b
        for c in src_cells
        for pat in (SOLUTION_BLOCK, HIDDEN_BLOCK)
        for b in pat.findall(c.source)
    ]
    visible = "\n".join(
        HIDDEN_BLOCK.sub("", SOLUTION_BLOCK.sub("", c.source))
        for c in src_cells
    )
    distinctive = {
        line.strip()
        for b in blocks
        for line in b.splitlines()
        if len(line.strip()) >= 20 and line.strip() not in visible
    }
    assert len(distinctive) >= 30, (
        "too few distinctive lines: the check would be vacuous"
    )
    leaked = sorted(line for line in distinctive if line in text)
    assert not leaked, (
        f"solution or hidden-test lines in the release: {leaked[:5]}"
    )
    answers = [
        c
        for c in nbformat.read(release, as_version=4).cells
        if _nbgrader_meta(c).get("solution")
    ]
    assert answers and all(
        "raise NotImplementedError()" in c.source for c in answers
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_book_copy_is_the_release(course, assignment):
    course, _ = course
    release = nbformat.read(
        course / "release" / assignment / f"{assignment}.ipynb", as_version=4
    )
    book = nbformat.read(BOOK / f"{assignment}.ipynb", as_version=4)
    assert [(c.cell_type, c.source) for c in book.cells] == [
        (c.cell_type, c.source) for c in release.cells
    ], f"book/exercises/{assignment}.ipynb is out of date: run `make exercises`"
    assert all(
        not c.get("outputs") for c in book.cells if c.cell_type == "code"
    )


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_gets_full_marks(course, assignment):
    course, _ = course
    points = sum(
        _nbgrader_meta(c)["points"]
        for c in _source(assignment).cells
        if _nbgrader_meta(c).get("grade")
    )
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


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_answers_using_torch_fail_on_the_numpy_only_check(course, assignment):
    """Each of these fixture answers reaches torch or dlcourse by another
    route (an import in the function, __import__, importlib, sys.modules, a
    closure, a default argument, an import at the top of the answer cell);
    its values are right, so its visible and hidden tests fail on the check
    itself, with a message that says why."""
    course, _ = course
    cells = _graded_cells(course, "fixture", assignment)
    for question in NOT_NUMPY[assignment]:
        for grade_id in (f"test_{question}", f"hidden_{question}"):
            errors = _errors(cells[grade_id])
            assert any(
                name == "AssertionError" and NOT_NUMPY_MESSAGE in text
                for name, text in errors
            ), (grade_id, errors)
    # and the check did not flag the NumPy answers of the solution
    cells = _graded_cells(course, "solution", assignment)
    assert not [
        grade_id
        for grade_id, cell in cells.items()
        if grade_id and _errors(cell)
    ]


def test_formula_plus_noise_is_no_simulation(course):
    course, _ = course
    cells = _graded_cells(course, "fixture", "ps2_dropout_ensembles")
    for grade_id in ("test_simulate_ensemble", "hidden_simulate_ensemble"):
        errors = _errors(cells[grade_id])
        assert any(
            name == "AssertionError" and "recipe" in text
            for name, text in errors
        ), (grade_id, errors)


def test_endless_loop_is_interrupted_and_later_cells_run(course):
    course, log = course
    by_id = _graded_cells(course, "fixture", "ps2_dropout_ensembles")
    errors = [name for name, _ in _errors(by_id["test_early_stopping_epoch"])]
    assert "CellTimeoutError" in errors, errors
    later = by_id["test_train_with_early_stopping"]
    assert not _errors(later), "the cells after the loop must run"
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
    loop = (
        course
        / "feedback"
        / "fixture"
        / "ps2_dropout_ensembles"
        / "ps2_dropout_ensembles.html"
    )
    assert "CellTimeoutError" in loop.read_text()


def test_nbgrader_outputs_are_ignored_by_git():
    ignored = (ROOT / ".gitignore").read_text().split()
    for entry in (
        "exercises/gradebook.db",
        "exercises/release/",
        "exercises/submitted/",
        "exercises/autograded/",
        "exercises/feedback/",
        "exercises/grades.csv",
    ):
        assert entry in ignored, entry
