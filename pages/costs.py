import streamlit as st

st.title("costs")
st.info("Coming next: this page lands with its own issue.")
