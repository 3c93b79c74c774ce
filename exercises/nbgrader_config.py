# nbgrader configuration of the course's graded exercises (run nbgrader from
# this folder):
#
#   make exercises                        # student versions -> release/ and
#                                         # book/exercises/
#   nbgrader autograde ps1_norm_penalties --create
#                                         # grade submitted/<student>/ps1.../
#   nbgrader generate_feedback ps1_norm_penalties   # HTML -> feedback/
#   nbgrader export                       # all grades -> grades.csv
#
# See book/exercises/instructors.md. The gradebook (gradebook.db), release/,
# submitted/, autograded/ and feedback/ are never committed (.gitignore).
c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "dlcourse"
c.CourseDirectory.root = "."

# Autograding runs every cell with a time limit: a cell that runs longer is
# interrupted (KeyboardInterrupt in the kernel) and recorded as an error, so an
# endless loop costs only the tests of that question; the following cells
# still run.
c.Execute.timeout = 30  # seconds per cell
c.Execute.interrupt_on_timeout = True
# nbgrader's Execute always continues after a cell that raises (allow_errors is
# fixed to True in nbgrader 0.9.6, not configurable): that cell's tests score
# 0, the rest are graded.

# The stub students see instead of a solution.
c.ClearSolutions.code_stub = {
    "python": "# YOUR CODE HERE\nraise NotImplementedError()"
}
