"""fsbench user-study app: raters rate, the organiser reads the report. The logic lives in fsbench.study.

    FSBENCH_STUDY_TOKEN=<organiser token> streamlit run app.py -- STUDY_FOLDER     (or FSBENCH_STUDY=STUDY_FOLDER)

Raters see letters (Result A, B, ...) in an order of their own, never method names, and only their own answers.
The organiser page opens with the token set in FSBENCH_STUDY_TOKEN when the app was started.
"""
from __future__ import annotations

import hmac
import os
import sys
from pathlib import Path

import streamlit as st

from fsbench.study import analysis
from fsbench.study.design import Study, StudyError
from fsbench.study.storage import Rater, Slot, Storage


def study_folder() -> Path | None:
    folder = os.environ.get("FSBENCH_STUDY") or (sys.argv[1] if len(sys.argv) > 1 else None)
    return Path(folder) if folder else None


@st.cache_resource
def load_study(folder: str) -> Study:
    return Study.load(folder)


def save_pick(study: Study, rater: Rater, slot: Slot, question: str, key: str) -> None:
    """Widget callback: store the choice the moment it is made (the widget's value is a display position)."""
    position = st.session_state[key]
    if position is not None:
        with Storage(study) as db:
            db.answer(rater, slot.unit, question, study.methods[slot.order[position]])


def save_score(study: Study, rater: Rater, slot: Slot, question: str, method: str, key: str) -> None:
    """Widget callback: store the score the moment it is given."""
    value = st.session_state[key]
    if value is not None:
        with Storage(study) as db:
            db.answer(rater, slot.unit, question, method, float(value))


def finish(study: Study, rater: Rater, unit: str) -> None:
    with Storage(study) as db:
        db.finish(rater, unit)


def letter(position: int) -> str:
    return chr(ord("A") + position)


def show_unit(study: Study, db: Storage, rater: Rater, slot: Slot) -> None:
    given = db.answers(rater, slot.unit)
    left, right = st.columns(2)
    # PNG: Streamlit would re-encode as JPEG, adding artefacts of its own to what realism is judged on
    left.image(str(study.image(slot.unit, "source")), caption="SOURCE (identity)", output_format="PNG")
    right.image(str(study.image(slot.unit, "target")), caption="TARGET (pose, expression, lighting)",
                output_format="PNG")
    columns = st.columns(len(slot.order))
    for pos, k in enumerate(slot.order):
        columns[pos].image(str(study.image(slot.unit, f"result-{k}")), caption=f"Result {letter(pos)}",
                           output_format="PNG")
    if study.design == "pick":
        for question, text in study.questions.items():
            chosen = [slot.order.index(study.methods.index(m)) for (q, m) in given if q == question]
            key = f"{rater.id}|{slot.unit}|{question}"
            st.radio(text, list(range(len(slot.order))), index=chosen[0] if chosen else None, key=key,
                     format_func=lambda pos: f"Result {letter(pos)}", horizontal=True, on_change=save_pick,
                     args=(study, rater, slot, question, key))
    else:
        low, high = study.definition["score_range"]
        scores = list(range(low, high + 1))
        for pos, k in enumerate(slot.order):
            method = study.methods[k]
            columns[pos].markdown(f"**Result {letter(pos)}**")
            for question, text in study.questions.items():
                key = f"{rater.id}|{slot.unit}|{question}|{pos}"
                old = given.get((question, method))
                columns[pos].radio(text, scores, index=None if old is None else scores.index(int(old)), key=key,
                                   horizontal=True, on_change=save_score,
                                   args=(study, rater, slot, question, method, key))
    complete = db.is_complete(rater, slot.unit)
    st.button("Next", disabled=not complete, on_click=finish, args=(study, rater, slot.unit), type="primary")
    if not complete:
        st.caption("Answer every question to go on. Your answers are saved as you give them.")


def rater_page(study: Study) -> None:
    code = st.session_state.get("rater")
    if code is None:
        st.write("Enter your name or the code you were given. With the same name you can leave and come back "
                 "where you were.")
        name = st.text_input("Your name or code")
        if st.button("Start") and name.strip():
            st.session_state["rater"] = name
            st.rerun()
        return
    if st.sidebar.button("Leave (come back later with the same name)"):
        del st.session_state["rater"]
        st.rerun()
    with Storage(study) as db:
        rater = db.join(code)
        done, total = db.progress(rater)
        st.progress(done / total, text=f"{done} of {total} done")
        slot = db.current(rater)
        if slot is None:
            st.success("All done. Thank you!")
            return
        show_unit(study, db, rater, slot)


def organiser_page(study: Study) -> None:
    expected = os.environ.get("FSBENCH_STUDY_TOKEN", "")
    if not expected:
        st.info("The organiser page is off: start the app with FSBENCH_STUDY_TOKEN set to a token of your choice.")
        return
    token = st.text_input("Organiser token", type="password")
    if not token:
        return
    if not hmac.compare_digest(token.encode(), expected.encode()):
        st.error("Wrong token.")
        return
    with Storage(study) as db:
        rows, progress = db.all_answers(), db.rater_progress()
    rep = analysis.report(study, rows)
    st.subheader(f"Study {study.id}: {rep['statistic']} per method, 95% intervals")
    st.text(analysis.format_report(rep))
    st.dataframe(progress, hide_index=True)
    st.download_button("Answers (CSV)", analysis.answers_csv(study, rows), f"{study.id}-answers.csv", "text/csv")
    st.download_button("Summary (CSV)", analysis.summary_csv(rep), f"{study.id}-summary.csv", "text/csv")


def main() -> None:
    st.set_page_config(page_title="Face study", layout="wide")
    folder = study_folder()
    if folder is None:
        st.error("No study: run `streamlit run app.py -- STUDY_FOLDER` (or set FSBENCH_STUDY).")
        return
    try:
        study = load_study(str(folder))
    except StudyError as err:
        st.error(str(err))
        return
    page = st.sidebar.radio("Page", ["Rate", "Organiser"])
    st.title("Face study" if page == "Rate" else "Organiser")
    if page == "Rate":
        rater_page(study)
    else:
        organiser_page(study)


main()
