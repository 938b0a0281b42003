"""The harness itself: a widget click reaches the kernel once the cell has finished."""

from __future__ import annotations

SMOKE = """
import ipywidgets as widgets
from IPython.display import display

said = widgets.Output()
button = widgets.Button(description="Say hello")

def clicked(_):
    with said:
        print("hello from the click")

button.on_click(clicked)
display(button, said)
"""


def test_a_widget_button_clicked_after_its_cell_finished_runs_its_callback(open_notebook) -> None:
    notebook = open_notebook([SMOKE])
    notebook.run_all()
    notebook.wait_all_done()
    assert "hello from the click" not in notebook.output_text(0)
    notebook.click("Say hello")
    notebook.wait_text("hello from the click", index=0)
    notebook.screenshot("after-click")
