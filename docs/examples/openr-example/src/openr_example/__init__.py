"""openr-example: the plugin module named by the ``openr`` entry point of this distribution.

It only *registers* components, by lazy ``"module:Class"`` strings: importing it (which every
``openr`` command does) imports nothing but ``openr_core``. The component modules are imported
when a config uses them, and they are light too, because ``openr validate`` imports them to read
their ``Config`` class.
"""

from openr_core import hookimpl


@hookimpl
def register_generators(register):
    register("echo", "openr_example.echo:EchoGenerator", doc="Returns the prompt's last line, `repeat` times (a test double).")


@hookimpl
def register_tasks(register):
    register("countdown", "openr_example.countdown:CountdownTask", doc="Count down from N to 0; the answer is the last number said.")
