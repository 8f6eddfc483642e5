import streamlit as st

st.title("history")
st.info("Coming next: this page lands with its own issue.")
