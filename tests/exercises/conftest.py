# The fixtures are student submissions for nbgrader, not notebooks for nbval
# to re-run.
collect_ignore_glob = ["fixtures/*"]
