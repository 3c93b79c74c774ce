# book/exercises/ holds the unexecuted student versions of the graded exercises (generated
# by nbgrader from exercises/source/); nbval has no outputs to compare there.
collect_ignore_glob = ["exercises/*"]
