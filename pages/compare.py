import streamlit as st

st.title("compare")
st.info("Coming next: this page lands with its own issue.")
