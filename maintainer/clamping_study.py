"""Compute notebook 04's clamping study (80 training runs, about 20 minutes on 2 cores) and write
it to `course_utils/zoo_weights/studies/icl_clamping.json`, with the numerics it ran under.

    python -m maintainer.clamping_study
"""

import sys

from course_utils import clamping
from maintainer.zoo_build import with_zoo_numerics, write_json

if __name__ == "__main__":
    with_zoo_numerics("maintainer.clamping_study")
    clamping.STUDY_FILE.parent.mkdir(parents=True, exist_ok=True)
    study = clamping.run_study()
    write_json(clamping.STUDY_FILE, study, indent=None)
    print(f"wrote {clamping.STUDY_FILE} ({len(study['runs'])} runs)", file=sys.stderr)
