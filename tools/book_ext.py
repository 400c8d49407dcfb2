"""A local Sphinx extension loaded by the book build (``_config.yml``: local_extensions).

It sets ``REGLIB_PROGRESS=static`` before the notebooks execute, so that reglib's text
progress bars store one final line each in the built pages instead of every redraw.
"""

import os


def setup(app):
    os.environ["REGLIB_PROGRESS"] = "static"
    return {"parallel_read_safe": True, "parallel_write_safe": True}
