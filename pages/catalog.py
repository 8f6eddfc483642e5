import streamlit as st

st.title("catalog")
st.info("Coming next: this page lands with its own issue.")
