"""openr-math: math benchmark tasks and math-verify answer grading for openr.

Light on purpose: importing the package imports neither math-verify nor ``datasets``.
"""

__version__ = "0.1.0"
