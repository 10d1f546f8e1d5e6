"""The maintainers' tier: building the zoo and its seed studies, the clamping study runner, the
exercise and Colab-cell generator. Learners never need it, and nothing in `course_utils` imports it
(tests/test_layout.py checks). Run from the repository's root, e.g. `python -m maintainer.zoo_build build`.
"""
